"""Follow a session's Slurm output files without re-reading them: byte offsets per file.

The TUI's log pane asks :meth:`LogTail.read_new` every second or so (in a worker); each call
reads only what was appended since. A huge log is not read whole on the first call: only its
last ``initial_bytes`` (from a line start), with a note saying how much was skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

from nsml_hpc.backends.files import RunFiles

INITIAL_BYTES = 256 * 1024
READ_LIMIT = 4 * 1024 * 1024  # per call per file: a burst is read over several calls


class LogTail:
    def __init__(self, files: RunFiles, *, initial_bytes: int = INITIAL_BYTES) -> None:
        self.files = files
        self.initial_bytes = initial_bytes
        self.offsets: dict[str, int] = {}

    def read_new(self, paths: Sequence[str]) -> bytes:
        """What the files at ``paths`` (oldest job first) gained since the last call."""
        out: list[bytes] = []
        for path in paths:
            size = self.files.size(path)
            if size is None:
                continue
            offset = self.offsets.get(path)
            if offset is None:
                offset = 0
                if size > self.initial_bytes:
                    offset = size - self.initial_bytes
                    head = self.files.read_from(path, offset, 64 * 1024)
                    newline = head.find(b"\n")
                    offset += newline + 1 if newline >= 0 else 0
                    out.append(f"[… {offset:,} earlier bytes of {path} not shown]\n".encode())
            if size < offset:  # truncated or replaced: start again
                offset = 0
            if size > offset:
                chunk = self.files.read_from(path, offset, min(size - offset, READ_LIMIT))
                offset += len(chunk)
                out.append(chunk)
            self.offsets[path] = offset
        return b"".join(out)
