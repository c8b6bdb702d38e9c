"""File access on the cluster's shared file system, where run directories live.

Local backends read the paths directly (:class:`LocalFiles`); the SSH backend implements the
same Protocol over SFTP (:mod:`nsml_hpc.backends.sftp_files`) or the system ``ssh`` binary
(:mod:`nsml_hpc.backends.openssh_files`), so submit, sync, snapshots and the CLI never care
where a run directory is. Paths are POSIX path strings on the cluster.

Reading: ``size``/``sizes``, ``read_from``, ``read_many`` (metrics and events, batched per
cluster; sync keeps the complete lines), ``stat``, ``list_dir``, ``read_bytes`` (snapshot
folders and manifests). Writing: ``make_dirs``, ``write_bytes`` (atomic), ``write_files`` and
``upload_tree`` (run directories built under a temporary name); ``batch()`` lets many writes
reach the disk with one flush at its end (a sweep's thousand run directories). Changing:
``rename`` (never replaces) and ``remove_tree`` (refuses links and anything not directly in
``inside``), ``make_read_only`` (a pushed dataset's files). Copying: ``copy_out``
(``model pull``).

Errors: a path that cannot be written raises :class:`~nsml_hpc.errors.BackendError` naming
the cluster, the path and the cause; a lost connection raises
:class:`~nsml_hpc.errors.ConnectionFailed`. Reads of missing files are not errors.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from nsml_hpc.code.upload import (
    LocalFile,
    Progress,
    Seed,
    UploadPlan,
    UploadStats,
    manifest_after,
)
from nsml_hpc.errors import BackendError


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


def removable(path: str, inside: str) -> bool:
    """``path`` names an entry directly in ``inside`` (checked on the strings; the
    implementations also check the real folders and refuse links)."""
    parent, name = posixpath.split(path.rstrip("/"))
    return name not in ("", ".", "..") and parent == inside.rstrip("/") and "/" in path


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

    def read_from(self, path: str, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes after ``offset``; empty if the file does not exist."""
        ...

    def read_many(self, requests: Sequence[tuple[str, int, int]]) -> list[bytes]:
        """:meth:`read_from` for each ``(path, offset, limit)``, in one round trip where the
        transport allows (sync reads every grown metrics file of a cluster this way)."""
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

    def make_dirs(self, path: str) -> None:
        """Create ``path`` and its parents (fine if it exists)."""
        ...

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a file atomically: readers see the old one or the whole new one."""
        ...

    def write_files(self, root: str, files: Mapping[str, bytes]) -> None:
        """Write new files (relative paths) under folder ``root``, making folders as needed,
        in as few round trips as the transport allows: for a run directory that is still
        being built under its temporary name (one by one they are not atomic). They are on
        the disk when the call returns, or when the enclosing :meth:`batch` ends."""
        ...

    def link_files(self, root: str, links: Mapping[str, str]) -> None:
        """Make new files (relative paths) under folder ``root`` that are the existing files
        named by the values (paths on the same file system): hard links where the file system
        has them, else copies; folders are made as needed. Only for files nobody changes
        after submit (a sweep's array script and code manifest, the same for each of its
        sessions). On the disk like :meth:`write_files`'s."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """Writes inside reach the disk together when the block ends (one flush instead of one
        per file); each write is complete and in place as soon as its call returns."""
        ...

    def rename(self, source: str, target: str) -> None:
        """Rename ``source`` to ``target``; fails (BackendError) rather than replace an
        existing ``target``."""
        ...

    def remove_tree(self, path: str, *, inside: str) -> None:
        """Delete the folder ``path``, which must be a real folder (not a link) directly in
        ``inside``; a ``path`` that is already gone is fine."""
        ...

    def copy_out(self, path: str, destination: Path) -> None:
        """Copy the folder ``path`` to ``destination`` on this machine (must not exist)."""
        ...

    def make_read_only(self, path: str) -> None:
        """Take the write permission off every file under folder ``path`` (folders keep
        theirs, so the whole folder can still be removed)."""
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
        (see :mod:`nsml_hpc.code.upload`). ``progress(sent, total)`` follows the bytes.
        """
        ...


_T = TypeVar("_T")

# link(2) refusals that a copy gets round (other errors are real ones).
NO_HARD_LINKS = frozenset(
    {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
)


def _in_folder(make: Callable[..., _T], *args: Any) -> _T:
    """``make(*args)`` (``os.open(path, ...)``, ``os.link(source, path)``: the path is the
    last string argument of the two or the first of ``os.open``), making the folder it needs
    only when the first try finds it missing: one system call where the folder exists."""
    try:
        return make(*args)
    except FileNotFoundError:
        path = args[1] if make is os.link else args[0]
        os.makedirs(os.path.dirname(path), exist_ok=True)  # noqa: PTH103, PTH120
        return make(*args)


def _copy_file(source: Path, target: str, item: LocalFile) -> None:
    """Copy one file's bytes in the kernel (``sendfile``), then its mode and mtime: fewer
    system calls than ``shutil.copy2`` (no stat of the source, no extended attributes)."""
    with source.open("rb") as src:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            offset = 0
            try:
                while sent := os.sendfile(fd, src.fileno(), offset, 1 << 30):
                    offset += sent
            except OSError as exc:  # no sendfile to a file here: copy through user space
                if offset or exc.errno not in (errno.EINVAL, errno.ENOTSOCK, errno.ENOSYS):
                    raise
                while chunk := src.read(1 << 20):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
            os.fchmod(fd, item.mode)
            os.utime(fd, (item.mtime, item.mtime))
        finally:
            os.close(fd)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _flush_file_system(path: str) -> None:
    """Put everything written on the file system of ``path`` on the disk: ``syncfs(2)``, one
    call however many files (falls back to ``sync()`` where libc has no syncfs)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        if _syncfs is None or _syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        import ctypes

        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    return function


_syncfs = _load_syncfs()


class LocalFiles:
    """Run directories on a file system this process sees (the login node's)."""

    def __init__(self, cluster: str = "local") -> None:
        self.cluster = cluster
        self._batch_depth = 0
        self._to_flush: dict[int, str] = {}  # st_dev -> a folder on that file system

    @contextmanager
    def batch(self) -> Iterator[None]:
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0:
                pending, self._to_flush = self._to_flush, {}
                for folder in pending.values():
                    _flush_file_system(folder)

    def _written(self, folder: str) -> None:
        """Flush now, or at the end of the batch (once per file system)."""
        if self._batch_depth == 0:
            _flush_file_system(folder)
            return
        with suppress(OSError):
            self._to_flush.setdefault(os.stat(folder).st_dev, folder)  # noqa: PTH116

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

    def read_from(self, path: str, offset: int, limit: int) -> bytes:
        try:
            with Path(path).open("rb") as handle:
                handle.seek(offset)
                return handle.read(limit)
        except (FileNotFoundError, NotADirectoryError):
            return b""
        except OSError as exc:  # another user's run directory: permission denied
            raise self._fail("read", path, exc) from exc

    def read_many(self, requests: Sequence[tuple[str, int, int]]) -> list[bytes]:
        return [self.read_from(path, offset, limit) for path, offset, limit in requests]

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
            raise self._fail("list", path, exc) from exc

    def read_bytes(self, path: str, limit: int) -> bytes | None:
        try:
            with Path(path).open("rb") as handle:
                return handle.read(limit + 1)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise self._fail("read", path, exc) from exc

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
                if self._batch_depth == 0:
                    os.fsync(out.fileno())
            Path(temp).replace(target)
            if self._batch_depth:
                self._written(str(target.parent))
        except BaseException as exc:
            Path(temp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise self._fail("write", path, exc) from exc
            raise

    def write_files(self, root: str, files: Mapping[str, bytes]) -> None:
        """Plain writes (the folder is renamed into place as a whole once complete), then one
        flush of the file system, or one at the end of the batch: never one per file.
        Folders are made only when a write finds one missing (no lookup per file)."""
        mode = 0o666 & ~_umask()
        target = root
        try:
            for relative, data in files.items():
                target = os.path.join(root, relative)  # noqa: PTH118 - string paths throughout
                fd = _in_folder(os.open, target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
        except OSError as exc:
            raise self._fail("write", target, exc) from exc
        self._written(root)

    def link_files(self, root: str, links: Mapping[str, str]) -> None:
        target = root
        try:
            for relative, source in links.items():
                target = os.path.join(root, relative)  # noqa: PTH118 - string paths throughout
                try:
                    _in_folder(os.link, source, target)
                except OSError as exc:
                    if exc.errno not in NO_HARD_LINKS:
                        raise
                    os.makedirs(os.path.dirname(target), exist_ok=True)  # noqa: PTH103, PTH120
                    shutil.copy2(source, target)  # another file system, or none to link
        except OSError as exc:
            raise self._fail("write", target, exc) from exc
        self._written(root)

    def rename(self, source: str, target: str) -> None:
        if os.path.lexists(target):
            raise BackendError(f"cluster {self.cluster}: {target} already exists")
        try:
            Path(source).rename(target)
        except OSError as exc:
            raise self._fail("rename to", target, exc) from exc

    def remove_tree(self, path: str, *, inside: str) -> None:
        target = Path(path)
        if not os.path.lexists(target) and removable(path, inside):
            return
        if (
            not removable(path, inside)
            or target.is_symlink()
            or not target.is_dir()
            or Path(inside).resolve() != target.resolve().parent
        ):
            raise BackendError(f"refusing to delete {path}: not a folder directly in {inside}")
        try:
            shutil.rmtree(target)
        except OSError as exc:
            raise self._fail("delete", path, exc) from exc

    def make_read_only(self, path: str) -> None:
        if not os.path.isdir(path) or os.path.islink(path):  # noqa: PTH112, PTH114
            raise BackendError(f"cluster {self.cluster}: cannot make {path} read-only: no folder")
        try:
            for directory, _, names in os.walk(path):
                for name in names:
                    target = os.path.join(directory, name)  # noqa: PTH118
                    if not os.path.islink(target):  # noqa: PTH114
                        mode = os.lstat(target).st_mode
                        os.chmod(target, stat.S_IMODE(mode) & ~0o222)  # noqa: PTH101
        except OSError as exc:
            raise self._fail("make read-only", path, exc) from exc

    def copy_out(self, path: str, destination: Path) -> None:
        source = Path(path)
        if source.is_symlink() or not source.is_dir():
            raise BackendError(f"{path} is not a folder")
        try:
            shutil.copytree(source, destination, symlinks=True)
        except (OSError, shutil.Error) as exc:
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
        """A local copy: everything is copied (a seed would save nothing here), with its
        permission bits and (whole-second) modification time, as the manifest records."""
        plan = UploadPlan(send=list(files))
        total = plan.bytes_to_send
        stats = UploadStats(files=len(files))
        made: set[str] = set()
        try:
            for item in files:
                target = os.path.join(dest, item.relative)  # noqa: PTH118
                folder = os.path.dirname(target)  # noqa: PTH120
                if folder not in made:
                    os.makedirs(folder, exist_ok=True)  # noqa: PTH103
                    made.add(folder)
                _copy_file(root / item.relative, target, item)
                stats.sent += 1
                stats.bytes_sent += item.size
                if progress is not None:
                    progress(stats.bytes_sent, total)
        except OSError as exc:
            raise self._fail("copy the code to", dest, exc) from exc
        stats.manifest = manifest_after(plan, {})
        return stats
