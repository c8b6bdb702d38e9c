"""File access on the cluster's shared file system, where run directories live.

Local backends read the paths directly; a remote backend (SSH) implements the same small
Protocol, so sync and the CLI never care where a run directory is.

Reading: ``size``, ``read_new_lines``, ``read_from`` (metrics and events), ``stat``,
``list_dir``, ``read_bytes`` (snapshot folders and manifests). Changing: ``rename`` and
``remove_tree`` (snapshot deletion; callers guard the paths, and ``remove_tree`` refuses links
and anything outside ``inside``). Copying: ``copy_out`` (``model pull``).
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from nsml_hpc.errors import BackendError
from nsml_hpc.scrape import MAX_READ_BYTES, read_new_lines


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int
    is_dir: bool


@dataclass(frozen=True)
class DirEntry:
    name: str
    is_dir: bool  # a real folder (links are never folders here)
    mtime_ns: int


class RunFiles(Protocol):
    def size(self, path: str) -> int | None:
        """Size in bytes, or ``None`` if the file does not exist."""
        ...

    def read_new_lines(
        self, path: str, offset: int, limit: int = MAX_READ_BYTES
    ) -> tuple[bytes, int]:
        """Complete lines after ``offset`` (see :func:`nsml_hpc.scrape.read_new_lines`)."""
        ...

    def read_from(self, path: str, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes after ``offset``; empty if the file does not exist."""
        ...

    def stat(self, path: str) -> FileStat | None:
        """Size, mtime and kind of ``path`` (not following a final link); None if missing."""
        ...

    def list_dir(self, path: str) -> list[DirEntry] | None:
        """The entries of folder ``path``; None if it does not exist."""
        ...

    def read_bytes(self, path: str, limit: int) -> bytes | None:
        """The whole file if it is at most ``limit`` bytes (else the first ``limit + 1``);
        None if it does not exist."""
        ...

    def rename(self, source: str, target: str) -> None:
        """Rename ``source`` to ``target`` (same folder); fails if ``target`` exists."""
        ...

    def remove_tree(self, path: str, *, inside: str) -> None:
        """Delete the folder ``path``, which must be a real folder directly in ``inside``."""
        ...

    def copy_out(self, path: str, destination: Path) -> None:
        """Copy the folder ``path`` to ``destination`` on this machine (must not exist)."""
        ...


class LocalFiles:
    """Run directories on a file system this process sees (the login node's)."""

    def size(self, path: str) -> int | None:
        try:
            return os.stat(path).st_size  # noqa: PTH116 - per file per sync: pathlib costs 3x
        except OSError:
            return None

    def read_new_lines(
        self, path: str, offset: int, limit: int = MAX_READ_BYTES
    ) -> tuple[bytes, int]:
        return read_new_lines(Path(path), offset, limit)

    def read_from(self, path: str, offset: int, limit: int) -> bytes:
        try:
            with Path(path).open("rb") as handle:
                handle.seek(offset)
                return handle.read(limit)
        except FileNotFoundError:
            return b""

    def stat(self, path: str) -> FileStat | None:
        try:
            info = os.lstat(path)
        except OSError:
            return None
        return FileStat(info.st_size, info.st_mtime_ns, stat.S_ISDIR(info.st_mode))

    def list_dir(self, path: str) -> list[DirEntry] | None:
        try:
            with os.scandir(path) as entries:
                return [
                    DirEntry(
                        entry.name,
                        entry.is_dir(follow_symlinks=False),
                        entry.stat(follow_symlinks=False).st_mtime_ns,
                    )
                    for entry in entries
                ]
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise BackendError(f"cannot list {path}: {exc.strerror or exc}") from exc

    def read_bytes(self, path: str, limit: int) -> bytes | None:
        try:
            with Path(path).open("rb") as handle:
                return handle.read(limit + 1)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def rename(self, source: str, target: str) -> None:
        if os.path.lexists(target):
            raise BackendError(f"cannot rename {source}: {target} exists")
        try:
            os.rename(source, target)  # noqa: PTH104
        except OSError as exc:
            raise BackendError(f"cannot rename {source}: {exc.strerror or exc}") from exc

    def remove_tree(self, path: str, *, inside: str) -> None:
        target = Path(path)
        parent = Path(inside)
        if (
            target.parent != parent
            or target.name in ("", ".", "..")
            or target.is_symlink()
            or not target.is_dir()
            or parent.resolve() != target.resolve().parent
        ):
            raise BackendError(f"refusing to delete {path}: not a folder directly in {inside}")
        try:
            shutil.rmtree(target)
        except OSError as exc:
            raise BackendError(f"cannot delete {path}: {exc.strerror or exc}") from exc

    def copy_out(self, path: str, destination: Path) -> None:
        source = Path(path)
        if source.is_symlink() or not source.is_dir():
            raise BackendError(f"{path} is not a folder")
        try:
            shutil.copytree(source, destination, symlinks=True)
        except (OSError, shutil.Error) as exc:
            raise BackendError(f"cannot copy {path} to {destination}: {exc}") from exc
