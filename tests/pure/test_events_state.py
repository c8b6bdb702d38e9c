"""The one rule for "state from events": what a job wrapper's events.jsonl says about its job,
and when that is newer than what the catalog (or Slurm) says."""

from __future__ import annotations

from typing import Any

import pytest

from nsml_hpc.slurm.records import JobRecord
from nsml_hpc.slurm.states import SessionState
from nsml_hpc.sync.events_state import (
    CLOCK_SKEW_SECONDS,
    FROM_EVENTS_REASON,
    Event,
    FileState,
    disagreement,
    files_ahead,
    is_provisional,
    job_state,
)

SUBMITTED = 1_000_000.0
NOW = SUBMITTED + 600


def ev(kind: str, at: float | None, job: str | None = "7", **data: Any) -> Event:
    return Event(kind, at, job, data)


def state(*events: Event, known: tuple[str, ...] = ()) -> FileState:
    return job_state("7", events, known_jobs=known, not_before=SUBMITTED, now=NOW)


def test_a_start_is_running_on_its_host_since_then() -> None:
    got = state(ev("started", SUBMITTED + 5, host="vm", restart_count=0, heartbeat=15))
    assert (got.state, got.started_at, got.host, got.heartbeat) == (
        SessionState.RUNNING,
        SUBMITTED + 5,
        "vm",
        15.0,
    )
    assert got.problem is None and got.unexplained is None


@pytest.mark.parametrize(("code", "ended"), [(0, SessionState.COMPLETED), (3, SessionState.FAILED)])
def test_a_clean_end_is_completed_or_failed_with_its_exit_code(
    code: int, ended: SessionState
) -> None:
    got = state(ev("started", SUBMITTED + 5), ev("ended", SUBMITTED + 9, exit_code=code))
    assert (got.state, got.exit_code, got.ended_at) == (ended, code, SUBMITTED + 9)
    record = got.record(SUBMITTED)
    assert (record.state, record.reason, record.exit_code, record.elapsed_s) == (
        ended,
        FROM_EVENTS_REASON,
        code,
        4.0,
    )
    assert is_provisional(record.reason)


def test_a_running_record_has_no_reason_and_no_end() -> None:
    record = state(ev("started", SUBMITTED + 5, host="vm")).record(SUBMITTED)
    assert (record.state, record.reason, record.ended_at, record.node_list) == (
        SessionState.RUNNING,
        None,
        None,
        "vm",
    )


@pytest.mark.parametrize(
    "events",
    [
        # the training process was killed by a signal (scancel, OOM killer, time limit)
        [ev("started", SUBMITTED + 5), ev("ended", SUBMITTED + 9, exit_code=143, signal="SIGTERM")],
        # Slurm's SIGTERM reached the wrapper; the script caught it and exited 0
        [
            ev("started", SUBMITTED + 5),
            ev("signal", SUBMITTED + 8, signal="SIGTERM"),
            ev("ended", SUBMITTED + 9, exit_code=0),
        ],
        # the time-limit warning, no requeue, then the end
        [
            ev("started", SUBMITTED + 5),
            ev("signal", SUBMITTED + 8, signal="USR2", grace=30),
            ev("ended", SUBMITTED + 9, exit_code=0),
        ],
    ],
)
def test_an_end_after_a_signal_is_left_to_slurm(events: list[Event]) -> None:
    got = state(*events)
    assert got.state is None
    assert got.unexplained is not None and "only Slurm knows" in got.unexplained
    assert got.exit_code is not None and got.ended_at == SUBMITTED + 9


def test_a_requeue_the_wrapper_made_waits_then_runs_again() -> None:
    first = [
        ev("started", SUBMITTED + 5, restart_count=0),
        ev("ended", SUBMITTED + 60, exit_code=0, requeue=True),
    ]
    assert state(*first).state == SessionState.REQUEUED
    waiting = state(*first, ev("requeued", SUBMITTED + 61, restart_count=1))
    assert (waiting.state, waiting.exit_code, waiting.ended_at) == (
        SessionState.PENDING,
        None,
        None,
    )
    again = state(
        *first,
        ev("requeued", SUBMITTED + 61, restart_count=1),
        ev("started", SUBMITTED + 90, restart_count=1, host="vm"),
        ev("resumed", SUBMITTED + 90, snapshot="s1"),
    )
    assert (again.state, again.restart, again.started_at) == (
        SessionState.RUNNING,
        1,
        SUBMITTED + 90,
    )
    failed = state(*first, ev("requeue_failed", SUBMITTED + 61, error="denied"))
    assert failed.state is None and failed.unexplained is not None


def test_events_of_earlier_jobs_of_the_session_are_history() -> None:
    got = state(
        ev("started", SUBMITTED + 1, job="6"),
        ev("ended", SUBMITTED + 2, job="6", exit_code=1),
        ev("started", SUBMITTED + 5),
        known=("6",),
    )
    assert (got.state, got.problem) == (SessionState.RUNNING, None)


@pytest.mark.parametrize(
    ("event", "words"),
    [
        (ev("started", SUBMITTED + 5, job="999"), "of job 999, not of this job (7)"),
        (ev("started", SUBMITTED + 5, job=None), "of no job id"),
        (ev("started", None), "without a time"),
        (ev("started", SUBMITTED - CLOCK_SKEW_SECONDS - 1), "before the job was submitted"),
        (ev("started", NOW + CLOCK_SKEW_SECONDS + 1), "in the future"),
        (ev("ended", SUBMITTED + 5, exit_code=True), "exit code True"),
        (ev("ended", SUBMITTED + 5, exit_code="0"), "exit code '0'"),
        (ev("ended", SUBMITTED + 5, exit_code=300), "exit code 300"),
        (ev("ended", SUBMITTED + 5), "exit code None"),
        (ev("started", SUBMITTED + 5, restart_count=-1), "restart_count -1"),
        (Event.stored("started", SUBMITTED + 5, "7", "[1, 2]"), "cannot be read"),
    ],
)
def test_events_that_cannot_be_trusted_give_no_state_and_say_why(event: Event, words: str) -> None:
    got = state(ev("started", SUBMITTED + 2), event)
    assert got.state is None
    assert got.problem is not None and words in got.problem


def test_time_going_backwards_is_impossible() -> None:
    got = state(
        ev("started", SUBMITTED + 400),
        ev("ended", SUBMITTED + 400 - CLOCK_SKEW_SECONDS - 1, exit_code=0),
    )
    assert got.problem is not None and "long before the event above it" in got.problem


def test_a_clock_skew_within_the_margin_is_fine() -> None:
    got = state(ev("started", SUBMITTED - 30), ev("ended", NOW + 30, exit_code=0))
    assert got.state == SessionState.COMPLETED


def test_no_events_say_nothing() -> None:
    assert state() == FileState("7")


RUNNING = FileState("7", SessionState.RUNNING, started_at=SUBMITTED + 5)
COMPLETED = FileState("7", SessionState.COMPLETED, exit_code=0, ended_at=SUBMITTED + 9)
WAITING_AGAIN = FileState("7", SessionState.PENDING, restart=1)


@pytest.mark.parametrize(
    ("files", "current", "silent", "ahead"),
    [
        (RUNNING, "SUBMITTED", False, True),
        (RUNNING, "PENDING", False, True),  # accounting has not seen the start yet
        (RUNNING, "PENDING", True, False),  # silent wrapper: Slurm's PENDING (a requeue) wins
        (RUNNING, "RUNNING", False, False),
        (RUNNING, "SUSPENDED", False, False),
        (COMPLETED, "RUNNING", True, True),  # the end shows before accounting has it
        (COMPLETED, "PENDING", True, True),
        (COMPLETED, "COMPLETED", True, False),
        (COMPLETED, "CANCELLED", True, False),  # an end is never undone from files
        (WAITING_AGAIN, "RUNNING", True, True),
        (WAITING_AGAIN, "PENDING", True, False),
        (WAITING_AGAIN, "REQUEUED", True, True),  # ``requeued`` after the requeue's end
        (FileState("7", SessionState.REQUEUED, exit_code=0), "RUNNING", True, True),
        (FileState("7", SessionState.REQUEUED, exit_code=0), "PENDING", True, False),
        (FileState("7", problem="bad"), "PENDING", False, False),
        (FileState("7", unexplained="signal"), "RUNNING", True, False),
    ],
)
def test_which_state_is_newer(files: FileState, current: str, silent: bool, ahead: bool) -> None:
    assert files_ahead(files, current, silent=silent) is ahead


def test_accounting_that_disagrees_with_the_events_is_named() -> None:
    cancelled = JobRecord("7", SessionState.CANCELLED, "CANCELLED by 0", exit_code=0)
    why = disagreement(COMPLETED, cancelled)
    assert why is not None and "COMPLETED" in why and "CANCELLED" in why
    assert disagreement(COMPLETED, JobRecord("7", SessionState.COMPLETED, "X", exit_code=0)) is None
    assert disagreement(RUNNING, cancelled) is None  # no end in the events: nothing to compare
    running = JobRecord("7", SessionState.RUNNING, "RUNNING")
    assert disagreement(COMPLETED, running) is None  # accounting not there yet


def test_an_event_from_the_future_says_when_the_clock_alone_changes_the_state() -> None:
    """The watch list (nsml_hpc.sync.watchlist) lasts no longer than that."""
    future = NOW + CLOCK_SKEW_SECONDS + 100
    got = state(ev("started", SUBMITTED + 2), ev("ended", future, exit_code=0))
    assert got.problem is not None and got.changes_at == future - CLOCK_SKEW_SECONDS
    assert state(ev("started", SUBMITTED - CLOCK_SKEW_SECONDS - 1)).changes_at is None
