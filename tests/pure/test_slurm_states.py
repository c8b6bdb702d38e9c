"""Mapping Slurm's job states onto session states, and which sessions sync still follows."""

from __future__ import annotations

import pytest

from nsml_hpc.slurm.states import (
    SETTLE_SECONDS,
    TERMINAL_STATES,
    SessionState,
    is_live,
    session_state,
)


@pytest.mark.parametrize(
    ("slurm_state", "expected"),
    [
        ("PENDING", SessionState.PENDING),
        ("REQUEUE_HOLD", SessionState.PENDING),
        ("RUNNING", SessionState.RUNNING),
        ("COMPLETING", SessionState.RUNNING),
        ("CONFIGURING", SessionState.RUNNING),
        ("SUSPENDED", SessionState.SUSPENDED),
        ("STOPPED", SessionState.SUSPENDED),
        ("COMPLETED", SessionState.COMPLETED),
        ("FAILED", SessionState.FAILED),
        ("SPECIAL_EXIT", SessionState.FAILED),
        ("TIMEOUT", SessionState.TIMEOUT),
        ("OUT_OF_MEMORY", SessionState.OUT_OF_MEMORY),
        ("NODE_FAIL", SessionState.NODE_FAIL),
        ("BOOT_FAIL", SessionState.BOOT_FAIL),
        ("DEADLINE", SessionState.DEADLINE),
        ("PREEMPTED", SessionState.PREEMPTED),
        ("REQUEUED", SessionState.REQUEUED),
        ("REVOKED", SessionState.CANCELLED),
    ],
)
def test_each_slurm_state_maps_to_its_session_state(slurm_state, expected):
    assert session_state(slurm_state) is expected


@pytest.mark.parametrize("text", ["CANCELLED by 0", "CANCELLED by 1000", "CANCELLED+", "CANCELLED"])
def test_cancelled_is_recognised_with_the_canceller_or_a_truncation_mark(text):
    assert session_state(text) is SessionState.CANCELLED


@pytest.mark.parametrize("text", ["OUT_OF_ME+", "OUT_OF_MEM", "OUT_OF_MEMORY+"])
def test_truncated_out_of_memory_is_still_out_of_memory(text):
    assert session_state(text) is SessionState.OUT_OF_MEMORY


def test_state_text_is_read_case_and_whitespace_insensitively():
    assert session_state("  running\n") is SessionState.RUNNING


@pytest.mark.parametrize("text", ["", "BOGUS", "RUN", "None assigned"])
def test_unknown_state_is_an_error_naming_it(text):
    with pytest.raises(ValueError, match="unknown Slurm job state"):
        session_state(text)


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_terminal_sessions_are_never_polled_again(state):
    assert not is_live(state, ended_at=None, now=1e9)


@pytest.mark.parametrize(
    "state",
    [SessionState.SUBMITTED, SessionState.PENDING, SessionState.RUNNING, SessionState.REQUEUED],
)
def test_unfinished_sessions_are_followed(state):
    assert is_live(state, ended_at=None, now=1e9)


def test_preempted_session_is_followed_until_it_settles():
    ended = 1_000_000.0
    assert is_live(SessionState.PREEMPTED, ended_at=None, now=ended)
    assert is_live(SessionState.PREEMPTED, ended_at=ended, now=ended + SETTLE_SECONDS - 1)
    assert not is_live(SessionState.PREEMPTED, ended_at=ended, now=ended + SETTLE_SECONDS)


def test_is_live_accepts_the_state_as_stored_text():
    assert is_live("RUNNING", ended_at=None, now=0.0)
    assert not is_live("COMPLETED", ended_at=None, now=0.0)


def test_lost_is_terminal_because_slurm_forgot_the_job():
    assert SessionState.LOST in TERMINAL_STATES
