"""What one sync looked at, for its watch list (:mod:`nsml_hpc.sync.watchlist`).

:class:`Watcher` stands between the sync and each cluster's files seam
(:class:`~nsml_hpc.backends.files.RunFiles`): every path the sync's code sizes, stats, reads or
lists is recorded with the signature it had *before* the sync looked (so a change during the
sync shows as a change afterwards), and every read that stopped short of the end of its file
(a backlog left for the next sync) is noticed. Deadlines (``due``) come from the code that
decides by the clock. Only run directories on this machine's file system
(:class:`~nsml_hpc.backends.files.LocalFiles`, absolute paths) can be watched: anything else
makes the watch list impossible, and none is written.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable, Sequence
from typing import Any, cast

from nsml_hpc.backends.base import SlurmBackend
from nsml_hpc.backends.files import DirEntry, FileStat, LocalFiles, RunFiles
from nsml_hpc.sync.watchlist import Signature


class Watcher:
    """The paths, deadlines and doubts of one sync."""

    def __init__(self) -> None:
        self.paths: dict[str, Signature] = {}
        self.valid_until = math.inf
        self.doubt: str | None = None  # why no watch list can say this sync's outcome
        self._read_to: dict[str, int] = {}  # furthest byte a streaming read reached
        self._backends: dict[str, SlurmBackend] = {}

    def due(self, at: float | None) -> None:
        """The sync would decide something else by the clock alone at ``at`` (None: never)."""
        if at is not None:
            self.valid_until = min(self.valid_until, at)

    def cannot(self, why: str) -> None:
        if self.doubt is None:
            self.doubt = why

    def note(self, path: str, *, follow: bool = True) -> tuple[bool, os.stat_result | None]:
        """Record ``path`` with its signature: whether this call took it, and the stat it
        came from (``follow``: links followed, as ``ps`` checks it; else ``lstat``, which
        differs only for a link: then ``ps`` sees a change and syncs, never the reverse)."""
        if path in self.paths or self.doubt is not None:
            return False, None
        if not path.startswith("/"):  # a POSIX path string: absolute (isabs costs 3x)
            self.cannot(f"a relative path: {path}")
            return False, None
        try:
            info: os.stat_result | None = os.stat(path) if follow else os.lstat(path)  # noqa: PTH116
        except (FileNotFoundError, NotADirectoryError):
            info = None
        except OSError as exc:
            self.cannot(f"{path}: {exc}")
            return False, None
        self.paths[path] = (info.st_size, info.st_mtime_ns) if info is not None else None
        return True, info

    def read(self, path: str, offset: int, data: bytes) -> None:
        self._read_to[path] = max(self._read_to.get(path, 0), offset + len(data))

    def backlog(self) -> list[str]:
        """Files a streaming read left bytes of (their size when first looked at)."""
        return sorted(
            path
            for path, end in self._read_to.items()
            if (sig := self.paths.get(path)) is not None and end < sig[0]
        )

    def backends(self, backend_for: Callable[[str], SlurmBackend]) -> Callable[[str], SlurmBackend]:
        """``backend_for`` whose backends' files are watched."""

        def watched(cluster: str) -> SlurmBackend:
            if cluster not in self._backends:
                self._backends[cluster] = cast(
                    SlurmBackend, _WatchedBackend(backend_for(cluster), self)
                )
            return self._backends[cluster]

        return watched


class _WatchedBackend:
    def __init__(self, backend: SlurmBackend, watcher: Watcher) -> None:
        self._backend = backend
        files = backend.files
        if isinstance(files, LocalFiles):
            self.files: RunFiles = cast(RunFiles, WatchedFiles(files, watcher))
        else:
            watcher.cannot(f"run directories of cluster {backend.cluster} are not local")
            self.files = files

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


class WatchedFiles:
    """:class:`~nsml_hpc.backends.files.LocalFiles` whose reads are recorded."""

    def __init__(self, files: LocalFiles, watcher: Watcher) -> None:
        self._files = files
        self._watcher = watcher

    def __getattr__(self, name: str) -> Any:  # writes and the rest: as they are
        return getattr(self._files, name)

    def exists(self, path: str) -> bool:
        self._watcher.note(path)
        return self._files.exists(path)

    def size(self, path: str) -> int | None:
        return self.sizes([path])[path]

    def sizes(self, paths: Sequence[str]) -> dict[str, int | None]:
        """The sizes :meth:`LocalFiles.sizes` gives (``os.stat``), from the signature when
        this call took it (one stat a file per sync, not two)."""
        found: dict[str, int | None] = {}
        watcher = self._watcher
        watched = watcher.paths
        stat_path = os.stat
        for path in paths:
            # :meth:`Watcher.note`'s common case inline (thousands of files a sync): an
            # absolute path not seen yet, no doubt, and a stat that answers or finds nothing
            if path in watched or watcher.doubt is not None or not path.startswith("/"):
                taken, info = watcher.note(path)
            else:
                taken = True
                try:
                    info = stat_path(path)
                except (FileNotFoundError, NotADirectoryError):
                    info = None
                except OSError:
                    taken, info = watcher.note(path)  # the doubt, recorded as note() does
                if taken:
                    watched[path] = (info.st_size, info.st_mtime_ns) if info is not None else None
            if not taken:
                found[path] = self._files.size(path)
            else:
                found[path] = info.st_size if info is not None else None
        return found

    def read_from(self, path: str, offset: int, limit: int) -> bytes:
        self._watcher.note(path)
        data = self._files.read_from(path, offset, limit)
        self._watcher.read(path, offset, data)
        return data

    def read_many(self, requests: Sequence[tuple[str, int, int]]) -> list[bytes]:
        for path, _, _ in requests:
            self._watcher.note(path)
        found = self._files.read_many(requests)
        for (path, offset, _), data in zip(requests, found, strict=True):
            self._watcher.read(path, offset, data)
        return found

    def stat(self, path: str) -> FileStat | None:
        """:meth:`LocalFiles.stat` (``lstat``), from the signature when this call took it."""
        taken, info = self._watcher.note(path, follow=False)
        if not taken:
            return self._files.stat(path)
        if info is None:
            return None
        return FileStat(info.st_size, info.st_mtime_ns, stat.S_ISDIR(info.st_mode))

    def list_dir(self, path: str) -> list[DirEntry] | None:
        self._watcher.note(path)
        return self._files.list_dir(path)

    def read_bytes(self, path: str, limit: int) -> bytes | None:
        self._watcher.note(path)
        return self._files.read_bytes(path, limit)
