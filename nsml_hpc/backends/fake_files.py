"""Run directories in memory: the :class:`~nsml_hpc.backends.files.RunFiles` of
:class:`~nsml_hpc.backends.fake.FakeBackend`.

:class:`MemoryFiles` keeps a cluster's file system as a dict of POSIX paths, with the same
rules as the real implementations (:class:`~nsml_hpc.backends.files.LocalFiles`, SFTP,
OpenSSH): reads of missing files are not errors, ``rename`` never replaces, ``remove_tree``
deletes only a folder directly in ``inside``, writes into a missing folder fail with a
:class:`~nsml_hpc.errors.BackendError` naming the cluster, the path and the cause. Relative
paths are taken from :meth:`MemoryFiles.home`, as SFTP does. Nothing touches the disk except
``copy_out`` (it copies to this machine) and ``upload_tree`` (it reads the local files).

For tests: :meth:`MemoryFiles.append` is a job writing to its run directory, ``calls`` logs
every method called (so a test counts round trips: one ``sizes`` and one ``read_many`` per
cluster per sync), and :meth:`MemoryFiles.fail` makes a method raise (a lost connection).
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

from nsml_hpc.backends.files import DirEntry, FileStat, removable
from nsml_hpc.code.upload import (
    LocalFile,
    Progress,
    RemoteFile,
    Seed,
    UploadStats,
    manifest_after,
    plan_upload,
    seed_candidates,
)
from nsml_hpc.errors import BackendError, NsmlError

FILE_MODE = 0o644
FOLDER_MODE = 0o755


@dataclass
class _Entry:
    """A file (``data`` holds its bytes) or a folder (``data`` is None)."""

    data: bytes | None
    mtime_ns: int
    mode: int

    @property
    def is_dir(self) -> bool:
        return self.data is None


class MemoryFiles:
    """A cluster's shared file system, in memory (see the module docstring)."""

    def __init__(
        self,
        cluster: str = "fake",
        *,
        home: str = "/home/fake",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cluster = cluster
        self.clock = clock
        self.calls: list[str] = []
        self.failures: dict[str, NsmlError] = {}
        self._home = posixpath.normpath(home)
        self._entries: dict[str, _Entry] = {"/": _Entry(None, self._now_ns(), FOLDER_MODE)}
        self._make_dirs(self._home)

    # --- for tests ---------------------------------------------------------------------------

    def fail(self, *methods: str, error: NsmlError) -> None:
        """Make ``methods`` (RunFiles method names) raise ``error`` until :meth:`recover`."""
        for method in methods:
            if not callable(getattr(self, method, None)):
                raise ValueError(f"MemoryFiles has no method {method!r}")
            self.failures[method] = error

    def recover(self, *methods: str) -> None:
        """Undo :meth:`fail` for ``methods`` (all of them when none is named)."""
        for method in methods or tuple(self.failures):
            self.failures.pop(method, None)

    def append(self, path: str, data: bytes) -> None:
        """Add ``data`` at the end of file ``path`` (made if missing), as a job writes
        ``metrics.jsonl``: not atomic, a reader may see a half line."""
        key = self._path(path)
        entry = self._entries.get(key)
        if entry is not None and entry.data is None:
            raise self._error("write", key, "Is a directory")
        self._store(key, (entry.data if entry is not None and entry.data else b"") + data)

    def paths(self) -> list[str]:
        """Every file and folder, sorted (folders without a trailing slash)."""
        return sorted(self._entries)

    # --- RunFiles -----------------------------------------------------------------------------

    def home(self) -> str:
        self._called("home")
        return self._home

    def exists(self, path: str) -> bool:
        self._called("exists")
        return self._path(path) in self._entries

    def size(self, path: str) -> int | None:
        self._called("size")
        return self._size(path)

    def sizes(self, paths: Sequence[str]) -> dict[str, int | None]:
        self._called("sizes")
        return {path: self._size(path) for path in paths}

    def read_from(self, path: str, offset: int, limit: int) -> bytes:
        self._called("read_from")
        return self._read(path, offset, limit)

    def read_many(self, requests: Sequence[tuple[str, int, int]]) -> list[bytes]:
        self._called("read_many")
        return [self._read(path, offset, limit) for path, offset, limit in requests]

    def stat(self, path: str) -> FileStat | None:
        self._called("stat")
        entry = self._entries.get(self._path(path))
        if entry is None:
            return None
        return FileStat(len(entry.data or b""), entry.mtime_ns, entry.is_dir)

    def list_dir(self, path: str) -> list[DirEntry] | None:
        self._called("list_dir")
        key = self._path(path)
        entry = self._entries.get(key)
        if entry is None or not entry.is_dir:
            return None
        return [
            DirEntry(posixpath.basename(name), child.is_dir, child.mtime_ns)
            for name, child in sorted(self._entries.items())
            if posixpath.dirname(name) == key and name != key
        ]

    def read_bytes(self, path: str, limit: int) -> bytes | None:
        self._called("read_bytes")
        entry = self._entries.get(self._path(path))
        if entry is None or entry.data is None:
            return None
        return entry.data[: limit + 1]

    def make_dirs(self, path: str) -> None:
        self._called("make_dirs")
        self._make_dirs(self._path(path))

    def write_bytes(self, path: str, data: bytes) -> None:
        self._called("write_bytes")
        self._write(self._path(path), data)

    def write_files(self, root: str, files: Mapping[str, bytes]) -> None:
        self._called("write_files")
        base = self._path(root)
        for relative, data in files.items():
            target = posixpath.normpath(posixpath.join(base, relative))
            self._make_dirs(posixpath.dirname(target))
            self._write(target, data)

    def link_files(self, root: str, links: Mapping[str, str]) -> None:
        """Copies (a dict of bytes has no inodes to share)."""
        self._called("link_files")
        base = self._path(root)
        for relative, source in links.items():
            entry = self._entries.get(self._path(source))
            if entry is None or entry.data is None:
                raise self._error("link to", self._path(source), "No such file or directory")
            target = posixpath.normpath(posixpath.join(base, relative))
            self._make_dirs(posixpath.dirname(target))
            self._write(target, entry.data)

    def batch(self) -> AbstractContextManager[None]:
        """Nothing to gather: a write in memory is complete and in place when it returns."""
        self._called("batch")
        return nullcontext()

    def rename(self, source: str, target: str) -> None:
        self._called("rename")
        old, new = self._path(source), self._path(target)
        if new in self._entries:
            raise BackendError(f"cluster {self.cluster}: {target} already exists")
        if old not in self._entries:
            raise self._error("rename to", new, "No such file or directory")
        self._need_folder(posixpath.dirname(new), "rename to", new)
        if new.startswith(old + "/"):
            raise self._error("rename to", new, "Invalid argument")
        for name in [name for name in self._entries if name == old or name.startswith(old + "/")]:
            self._entries[new + name[len(old) :]] = self._entries.pop(name)

    def remove_tree(self, path: str, *, inside: str) -> None:
        self._called("remove_tree")
        key = self._path(path)
        entry = self._entries.get(key)
        if entry is None and removable(path, inside):
            return
        if (
            not removable(path, inside)
            or entry is None
            or not entry.is_dir
            or posixpath.dirname(key) != self._path(inside)
        ):
            raise BackendError(f"refusing to delete {path}: not a folder directly in {inside}")
        for name in [name for name in self._entries if name == key or name.startswith(key + "/")]:
            del self._entries[name]

    def make_read_only(self, path: str) -> None:
        self._called("make_read_only")
        key = self._path(path)
        entry = self._entries.get(key)
        if entry is None or not entry.is_dir:
            raise BackendError(f"cluster {self.cluster}: cannot make {path} read-only: no folder")
        for name, child in list(self._entries.items()):
            if name.startswith(key + "/") and child.data is not None:
                self._entries[name] = replace(child, mode=child.mode & ~0o222)

    def copy_out(self, path: str, destination: Path) -> None:
        self._called("copy_out")
        key = self._path(path)
        entry = self._entries.get(key)
        if entry is None or not entry.is_dir:
            raise BackendError(f"{path} is not a folder")
        if destination.exists():
            raise BackendError(f"cannot copy {path} to {destination}: it already exists")
        try:
            destination.mkdir(parents=True)
            for name, child in sorted(self._entries.items()):
                if not name.startswith(key + "/"):
                    continue
                local = destination / name[len(key) + 1 :]
                if child.data is None:
                    local.mkdir(exist_ok=True)
                else:
                    local.write_bytes(child.data)
                    local.chmod(child.mode)
        except OSError as exc:
            raise BackendError(f"cannot copy {path} to {destination}: {exc}") from exc

    def upload_tree(
        self,
        root: Path,
        files: Sequence[LocalFile],
        dest: str,
        *,
        seed: Seed | None = None,
        progress: Progress | None = None,
    ) -> UploadStats:
        """As over SSH: the seed's unchanged files are copied on "the cluster", the rest is
        read from ``root`` and sent (mtimes and modes kept, so the next seed can match)."""
        self._called("upload_tree")
        base = self._path(dest)
        recorded = seed.manifest if seed is not None else {}
        if seed is not None:
            for relative in seed_candidates(files, recorded):
                source = self._entries.get(self._path(posixpath.join(seed.code_dir, relative)))
                if source is not None and source.data is not None:
                    target = posixpath.join(base, relative)
                    self._make_dirs(posixpath.dirname(target))
                    self._entries[target] = _Entry(source.data, source.mtime_ns, source.mode)
        present, folders = self._walk(base)
        plan = plan_upload(files, present, folders, recorded)
        self._make_dirs(base)
        total, sent = plan.bytes_to_send, 0
        for item in plan.send:
            target = posixpath.join(base, item.relative)
            try:
                data = (root / item.relative).read_bytes()
            except OSError as exc:
                raise self._error("upload the code to", target, exc.strerror or str(exc)) from exc
            self._make_dirs(posixpath.dirname(target))
            self._entries[target] = _Entry(data, item.mtime * 1_000_000_000, item.mode)
            sent += item.size
            if progress is not None:
                progress(sent, total)
        for relative in plan.remove:
            del self._entries[posixpath.join(base, relative)]
        return UploadStats(
            files=len(files),
            sent=len(plan.send),
            kept=len(plan.keep),
            removed=len(plan.remove),
            bytes_sent=sent,
            manifest=manifest_after(plan, recorded),
        )

    # --- inside -------------------------------------------------------------------------------

    def _called(self, method: str) -> None:
        self.calls.append(method)
        if method in self.failures:
            raise self.failures[method]

    def _path(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self._home, path))

    def _now_ns(self) -> int:
        return int(self.clock() * 1_000_000_000)

    def _error(self, action: str, path: str, cause: str) -> BackendError:
        return BackendError(f"cluster {self.cluster}: cannot {action} {path}: {cause}")

    def _size(self, path: str) -> int | None:
        entry = self._entries.get(self._path(path))
        return None if entry is None else len(entry.data or b"")

    def _read(self, path: str, offset: int, limit: int) -> bytes:
        entry = self._entries.get(self._path(path))
        if entry is None or entry.data is None:
            return b""
        return entry.data[offset : offset + limit]

    def _need_folder(self, folder: str, action: str, path: str) -> None:
        entry = self._entries.get(folder)
        if entry is None:
            raise self._error(action, path, "No such file or directory")
        if not entry.is_dir:
            raise self._error(action, path, "Not a directory")

    def _make_dirs(self, path: str) -> None:
        parts = path.strip("/").split("/") if path.strip("/") else []
        current = ""
        for part in parts:
            current = f"{current}/{part}"
            entry = self._entries.get(current)
            if entry is None:
                self._entries[current] = _Entry(None, self._now_ns(), FOLDER_MODE)
            elif not entry.is_dir:
                cause = "File exists" if current == path else "Not a directory"
                raise self._error("create", path, cause)

    def _write(self, path: str, data: bytes) -> None:
        self._need_folder(posixpath.dirname(path), "write", path)
        entry = self._entries.get(path)
        if entry is not None and entry.is_dir:
            raise self._error("write", path, "Is a directory")
        self._store(path, data)

    def _store(self, path: str, data: bytes) -> None:
        self._need_folder(posixpath.dirname(path), "write", path)
        old = self._entries.get(path)
        self._entries[path] = _Entry(data, self._now_ns(), old.mode if old else FILE_MODE)

    def _walk(self, base: str) -> tuple[dict[str, RemoteFile], set[str]]:
        """Files (relative, with whole-second mtimes) and folders under ``base``."""
        files: dict[str, RemoteFile] = {}
        folders: set[str] = set()
        for name, entry in self._entries.items():
            if not name.startswith(base + "/"):
                continue
            relative = name[len(base) + 1 :]
            if entry.data is None:
                folders.add(relative)
            else:
                files[relative] = RemoteFile(
                    relative, len(entry.data), entry.mtime_ns // 1_000_000_000
                )
        return files, folders
