"""File access on the cluster's shared file system, where run directories live.

Local backends read the paths directly (:class:`LocalFiles`); the SSH backend implements the
same Protocol over SFTP (:mod:`nsml_hpc.backends.sftp_files`) or the system ``ssh`` binary
(:mod:`nsml_hpc.backends.openssh`), so submit, sync and the CLI never care where a run
directory is. Paths are POSIX path strings on the cluster.

Errors: a path that cannot be written raises :class:`~nsml_hpc.errors.BackendError` naming
the cluster, the path and the cause; a lost connection raises
:class:`~nsml_hpc.errors.ConnectionFailed`. Reads of missing files are not errors.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from nsml_hpc.backends.upload import (
    LocalFile,
    Progress,
    Seed,
    UploadPlan,
    UploadStats,
    manifest_after,
)
from nsml_hpc.errors import BackendError
from nsml_hpc.scrape import MAX_READ_BYTES, read_new_lines


@dataclass(frozen=True)
class DirEntry:
    name: str
    is_dir: bool
    mtime: float


class RunFiles(Protocol):
    def home(self) -> str:
        """The home directory of the cluster account (relative run roots live under it)."""
        ...

    def exists(self, path: str) -> bool: ...

    def size(self, path: str) -> int | None:
        """Size in bytes, or ``None`` if the file does not exist."""
        ...

    def sizes(self, paths: Sequence[str]) -> dict[str, int | None]:
        """:meth:`size` of many files at once (one round trip where the transport allows)."""
        ...

    def read_new_lines(
        self, path: str, offset: int, limit: int = MAX_READ_BYTES
    ) -> tuple[bytes, int]:
        """Complete lines after ``offset`` (see :func:`nsml_hpc.scrape.read_new_lines`),
        reading only the bytes after ``offset``."""
        ...

    def read_from(self, path: str, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes after ``offset``; empty if the file does not exist."""
        ...

    def read_many(self, requests: Sequence[tuple[str, int, int]]) -> list[bytes]:
        """:meth:`read_from` for each ``(path, offset, limit)``, in one round trip where the
        transport allows (sync reads every grown metrics file of a cluster this way)."""
        ...

    def list_dir(self, path: str) -> list[DirEntry]:
        """The entries of a folder (none if it does not exist)."""
        ...

    def make_dirs(self, path: str) -> None:
        """Create ``path`` and its parents (fine if it exists)."""
        ...

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a file atomically: readers see the old one or the whole new one."""
        ...

    def write_files(self, root: str, files: Mapping[str, bytes]) -> None:
        """Write new files (relative paths) under folder ``root``, making folders as needed,
        in as few round trips as the transport allows: for a run directory that is still
        being built under its temporary name (one by one they are not atomic)."""
        ...

    def rename(self, source: str, target: str) -> None:
        """Rename; fails (BackendError) rather than replace an existing ``target``."""
        ...

    def remove_tree(self, path: str) -> None:
        """Delete a file or folder tree (missing is fine; a symbolic link is refused)."""
        ...

    def upload_tree(
        self,
        root: Path,
        files: Sequence[LocalFile],
        dest: str,
        *,
        seed: Seed | None = None,
        progress: Progress | None = None,
    ) -> UploadStats:
        """Make folder ``dest`` hold exactly ``files`` (read under local ``root``).

        With a ``seed`` the previous snapshot is copied first and only what differs is sent
        (see :mod:`nsml_hpc.backends.upload`). ``progress(sent, total)`` follows the bytes.
        """
        ...


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


class LocalFiles:
    """Run directories on a file system this process sees (the login node's)."""

    def __init__(self, cluster: str = "local") -> None:
        self.cluster = cluster

    def _fail(self, action: str, path: str, exc: OSError) -> BackendError:
        return BackendError(
            f"cluster {self.cluster}: cannot {action} {path}: {exc.strerror or exc}"
        )

    def home(self) -> str:
        return str(Path.home())

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def size(self, path: str) -> int | None:
        try:
            return os.stat(path).st_size  # noqa: PTH116 - per file per sync: pathlib costs 3x
        except OSError:
            return None

    def sizes(self, paths: Sequence[str]) -> dict[str, int | None]:
        return {path: self.size(path) for path in paths}

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

    def read_many(self, requests: Sequence[tuple[str, int, int]]) -> list[bytes]:
        return [self.read_from(path, offset, limit) for path, offset, limit in requests]

    def list_dir(self, path: str) -> list[DirEntry]:
        try:
            with os.scandir(path) as entries:
                return [
                    DirEntry(
                        entry.name,
                        entry.is_dir(follow_symlinks=False),
                        entry.stat(follow_symlinks=False).st_mtime,
                    )
                    for entry in entries
                ]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def make_dirs(self, path: str) -> None:
        try:
            Path(path).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._fail("create", path, exc) from exc

    def write_bytes(self, path: str, data: bytes) -> None:
        target = Path(path)
        try:
            handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        except OSError as exc:
            raise self._fail("write", path, exc) from exc
        try:
            os.fchmod(handle, 0o666 & ~_umask())  # mkstemp makes 0600; keep the usual mode
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            Path(temp).replace(target)
        except BaseException as exc:
            Path(temp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise self._fail("write", path, exc) from exc
            raise

    def write_files(self, root: str, files: Mapping[str, bytes]) -> None:
        for relative, data in files.items():
            target = os.path.join(root, relative)  # noqa: PTH118 - string paths throughout
            self.make_dirs(os.path.dirname(target))  # noqa: PTH120
            self.write_bytes(target, data)

    def rename(self, source: str, target: str) -> None:
        if os.path.lexists(target):
            raise BackendError(f"cluster {self.cluster}: {target} already exists")
        try:
            Path(source).rename(target)
        except OSError as exc:
            raise self._fail("rename to", target, exc) from exc

    def remove_tree(self, path: str) -> None:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(info.st_mode):
            raise BackendError(f"cluster {self.cluster}: refusing to delete symbolic link {path}")
        try:
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(path)
            else:
                Path(path).unlink()
        except OSError as exc:
            raise self._fail("delete", path, exc) from exc

    def upload_tree(
        self,
        root: Path,
        files: Sequence[LocalFile],
        dest: str,
        *,
        seed: Seed | None = None,
        progress: Progress | None = None,
    ) -> UploadStats:
        """A local copy: everything is copied (a seed would save nothing here)."""
        plan = UploadPlan(send=list(files))
        total = plan.bytes_to_send
        stats = UploadStats(files=len(files))
        try:
            for item in files:
                target = Path(dest, item.relative)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / item.relative, target)
                stats.sent += 1
                stats.bytes_sent += item.size
                if progress is not None:
                    progress(stats.bytes_sent, total)
        except OSError as exc:
            raise self._fail("copy the code to", dest, exc) from exc
        stats.manifest = manifest_after(plan, {})
        return stats
