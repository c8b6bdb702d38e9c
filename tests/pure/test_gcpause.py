"""The cyclic collector paused for the length of a sync (nsml_hpc.sync.gcpause)."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from nsml_hpc.sync import run
from nsml_hpc.sync.gcpause import gc_paused


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


class _Node:
    def __init__(self) -> None:
        self.me: Any = self  # a reference cycle: only the collector frees it


def test_off_inside_and_on_after() -> None:
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_cyclic_garbage_of_the_block_is_freed_when_it_ends() -> None:
    with gc_paused():
        node = _Node()
        alive = weakref.ref(node)
        del node
        assert alive() is not None  # nothing collects it while paused
    assert alive() is None  # the young collection at the end did


def test_nested_and_concurrent_pauses_end_with_the_last() -> None:
    inner_done = threading.Event()
    release = threading.Event()
    seen: list[bool] = []

    def other() -> None:
        with gc_paused():
            inner_done.set()
            release.wait(10)
        seen.append(gc.isenabled())

    with gc_paused():
        worker = threading.Thread(target=other)
        worker.start()
        assert inner_done.wait(10)
    assert not gc.isenabled()  # the other thread's sync is still running
    release.set()
    worker.join(10)
    assert gc.isenabled()
    assert seen == [True]


def test_a_collector_the_caller_disabled_stays_disabled() -> None:
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_an_error_in_the_block_turns_it_back_on() -> None:
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_sync_runs_with_the_collector_paused(monkeypatch: pytest.MonkeyPatch) -> None:
    during: list[bool] = []

    def fake_sync(*_args: Any, **_kwargs: Any) -> run.SyncReport:
        during.append(gc.isenabled())
        return run.SyncReport()

    monkeypatch.setattr(run, "_sync", fake_sync)
    nothing: Any = None  # _sync is replaced: nothing is read
    report = run.sync(nothing, nothing, nothing)
    assert isinstance(report, run.SyncReport)
    assert during == [False]
    assert gc.isenabled()
