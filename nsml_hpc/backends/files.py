"""File access on the cluster's shared file system, where run directories live.

Local backends read the paths directly; a remote backend (SSH) implements the same small
Protocol, so sync and the CLI never care where a run directory is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from nsml_hpc.scrape import MAX_READ_BYTES, read_new_lines


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
