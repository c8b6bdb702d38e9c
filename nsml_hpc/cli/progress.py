"""The upload progress bar of ``submit`` (stderr, only on a terminal, only for uploads that
take more than a moment)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

MIB = 1024 * 1024


def render_bar(sent: int, total: int, elapsed: float, width: int = 30) -> str:
    """``uploading code [#########.....................]  3.0/10.0 MiB  1.5 MiB/s`` (pure)."""
    fraction = 1.0 if total <= 0 else min(1.0, sent / total)
    filled = round(fraction * width)
    rate = sent / elapsed / MIB if elapsed > 0 else 0.0
    return (
        f"uploading code [{'#' * filled}{'.' * (width - filled)}] "
        f"{sent / MIB:5.1f}/{total / MIB:.1f} MiB  {rate:.1f} MiB/s"
    )


class UploadBar:
    """A ``progress(sent, total)`` callback that draws once an upload has run ``delay`` s."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        delay: float = 0.5,
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        enabled: bool | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.delay, self.interval, self.clock = delay, interval, clock
        self.started = clock()
        self.last_draw = 0.0
        self.drawn = False

    def __call__(self, sent: int, total: int) -> None:
        if not self.enabled:
            return
        now = self.clock()
        elapsed = now - self.started
        if elapsed < self.delay or (now - self.last_draw < self.interval and sent < total):
            return
        self.stream.write("\r" + render_bar(sent, total, elapsed))
        self.stream.flush()
        self.last_draw = now
        self.drawn = True

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
