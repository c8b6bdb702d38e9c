"""The cyclic garbage collector paused for the length of one sync.

A sync of 1,000 live sessions builds a few thousand short-lived ORM rows (sessions, jobs,
cursors) and their SQLAlchemy states. Each allocation counts towards CPython's collection
thresholds, so a sync ran a dozen young and, every other sync or so, a FULL collection over
the whole heap (SQLAlchemy, SQLModel and pydantic are well over 100,000 tracked objects):
measured, ~40 ms of a ~140 ms steady sync, none of it finding garbage the sync made (its rows
are freed by reference counting when the sync returns).

:func:`gc_paused` disables the collector while a sync runs and, when the outermost paused sync
ends (its frames and rows gone), runs ONE young-generation collection: the cyclic garbage the
sync made (all of it still young, since nothing was collected meanwhile) is freed there, so
memory stays bounded however many syncs a process runs; nothing older is walked. Reference
counting (which frees almost everything) works as always. Scoped and nestable: concurrent or
nested syncs (a TUI worker thread) keep it off until the last one ends, and a collector the
caller had disabled stays disabled. The pause covers only the sync's own work: the longest a
sync runs is bounded by its reads (at most ``MAX_READ_BYTES`` a batch), so is the garbage it
can hold back.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off; afterwards one young collection (see the
    module doc). Nothing changes for a caller that had the collector disabled."""
    global _depth, _was_enabled
    with _LOCK:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _LOCK:
            _depth -= 1
            resume = _depth == 0 and _was_enabled
            if resume:
                gc.enable()
        if resume:
            gc.collect(0)
