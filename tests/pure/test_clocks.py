"""The two clocks: when a live view reads run directories, and when sync asks Slurm."""

from __future__ import annotations

from collections import deque

import pytest

from nsml_hpc.config.site_policy import SlurmPolicy
from nsml_hpc.sync.clocks import (
    CONFIRM_FACTOR,
    IDLE_FILE_SECONDS,
    REASONS_FACTOR,
    ClockState,
    Decision,
    FileClock,
    Needs,
    after_spending,
    decide,
    silent_at,
    tokens_now,
    wrapper_silent,
)

POLICY = SlurmPolicy(floor_seconds=60.0, action_floor_seconds=5.0, queries_per_hour=60)
T = 100_000.0


def asked(needs: Needs, last: float, **clock: float | str | None) -> Decision:
    return decide(needs, ClockState(last_query_at=T - last, **clock), POLICY, T)  # type: ignore[arg-type]


def test_nothing_live_never_asks() -> None:
    decision = asked(Needs(), last=10_000)
    assert (decision.due, decision.period) == (False, None)


@pytest.mark.parametrize(
    "needs", [Needs(pending=1), Needs(silent=1), Needs(unconfirmed=1), Needs(pending=2, alive=5)]
)
def test_what_files_cannot_tell_is_asked_every_floor(needs: Needs) -> None:
    assert not asked(needs, last=59).due
    decision = asked(needs, last=60)
    assert decision.due and decision.period == 60.0


def test_running_sessions_with_a_live_wrapper_are_confirmed_four_times_less_often() -> None:
    needs = Needs(alive=3)
    assert not asked(needs, last=60 * CONFIRM_FACTOR - 1).due
    decision = asked(needs, last=60 * CONFIRM_FACTOR)
    assert decision.due and "confirming" in decision.why


def test_a_users_action_or_what_files_cannot_explain_asks_after_the_action_floor() -> None:
    acted = asked(Needs(alive=1), last=5, wanted_at=T - 1, wanted_why="mnist/3 stopped")
    assert acted.due and acted.why == "mnist/3 stopped"
    assert not asked(Needs(alive=1), last=4, wanted_at=T - 1).due
    already = asked(Needs(alive=1), last=5, wanted_at=T - 6)  # the last query came after it
    assert not already.due
    explained = asked(Needs(alive=1, explain=("mnist/3: got SIGTERM",)), last=5)
    assert explained.due and explained.why == "mnist/3: got SIGTERM"


def test_the_ceiling_defers_a_due_query_and_squeue_needs_a_second_token() -> None:
    empty = asked(Needs(pending=1), last=600, tokens=0.5, tokens_at=T)
    assert (empty.due, empty.deferred_by_ceiling) == (False, True)
    one = asked(Needs(pending=1), last=600, tokens=1.2, tokens_at=T)
    assert (one.due, one.may_queue) == (True, False)
    two = asked(Needs(pending=1), last=600, tokens=2.0, tokens_at=T)
    assert (two.due, two.may_queue) == (True, True)


def test_pending_reasons_are_reread_every_few_floors() -> None:
    recent = asked(Needs(pending=1), last=60, last_queue_at=T - 60)
    assert not recent.refresh_reasons
    old = asked(Needs(pending=1), last=60, last_queue_at=T - 60 * REASONS_FACTOR)
    assert old.refresh_reasons


def test_the_bucket_refills_up_to_its_burst() -> None:
    assert tokens_now(ClockState(), POLICY, T) == POLICY.burst == 6.0
    spent, at = after_spending(ClockState(), POLICY, T, 2)
    assert (spent, at) == (4.0, T)
    later = ClockState(tokens=0.0, tokens_at=T)
    assert tokens_now(later, POLICY, T + 3600 / 54) == pytest.approx(1.0)
    assert tokens_now(later, POLICY, T + 10 * 3600) == POLICY.burst


@pytest.mark.parametrize("ceiling", [4, 20, 60, 600])
def test_no_hour_holds_more_commands_than_the_ceiling_however_hard_anyone_asks(
    ceiling: int,
) -> None:
    """A user who acts every second for three hours, with sessions pending all along (each
    query wants sacct + squeue): every 3600 s window holds at most ``ceiling`` commands."""
    policy = SlurmPolicy(floor_seconds=60.0, action_floor_seconds=1.0, queries_per_hour=ceiling)
    clock = ClockState()
    sent: deque[float] = deque()
    worst = 0
    for second in range(3 * 3600):
        now = T + second
        decision = decide(
            Needs(pending=1),
            ClockState(
                last_query_at=clock.last_query_at,
                wanted_at=now,
                tokens=clock.tokens,
                tokens_at=clock.tokens_at,
            ),
            policy,
            now,
        )
        if not decision.due:
            continue
        commands = 2 if decision.may_queue else 1
        tokens, at = after_spending(clock, policy, now, commands)
        clock = ClockState(last_query_at=now, tokens=tokens, tokens_at=at)
        sent.extend([now] * commands)
        while sent and sent[0] <= now - 3600:
            sent.popleft()
        worst = max(worst, len(sent))
    assert worst <= ceiling


@pytest.mark.parametrize(
    ("heartbeat", "last_life", "silent"),
    [
        (None, T - 1, True),  # an older wrapper: no heartbeat, Slurm's pace
        (15.0, None, True),
        (15.0, T - 30, False),
        (15.0, T - 38, True),  # 2.5 beats without a line
    ],
)
def test_a_wrapper_goes_silent_after_missing_heartbeats(
    heartbeat: float | None, last_life: float | None, silent: bool
) -> None:
    assert wrapper_silent(heartbeat, last_life, T) is silent


def test_the_file_clock_keeps_its_pace_while_sessions_are_live_and_backs_off_when_none_is() -> None:
    clock = FileClock(1.0)
    assert clock.next_wait(4.0, live=True) == 1.0
    waits = [1.0]
    for _ in range(5):
        waits.append(clock.next_wait(waits[-1], live=False))
    assert waits == [1.0, 2.0, 4.0, IDLE_FILE_SECONDS, IDLE_FILE_SECONDS, IDLE_FILE_SECONDS]
    assert FileClock(30.0).next_wait(30.0, live=False) == 30.0


def test_each_decision_says_when_it_turns_by_the_clock_alone() -> None:
    """For the watch list (nsml_hpc.sync.watchlist): not due until the period is over; a
    deferred one when the bucket holds a token again; a due one at once; none while nothing
    is live."""
    waiting = asked(Needs(pending=1), last=20)
    assert not waiting.due and waiting.due_at == T - 20 + 60
    assert not asked(Needs(pending=1), last=60 - 1e-6).due
    assert asked(Needs(alive=1), last=10).due_at == T - 10 + 60 * CONFIRM_FACTOR
    deferred = asked(Needs(pending=1), last=600, tokens=0.5, tokens_at=T)
    assert deferred.due_at is not None
    assert tokens_now(ClockState(tokens=0.5, tokens_at=T), POLICY, deferred.due_at) == (
        pytest.approx(1.0)
    )
    assert asked(Needs(pending=1), last=600).due_at == T
    assert asked(Needs(), last=600).due_at is None


def test_a_live_wrapper_says_when_it_goes_silent() -> None:
    assert silent_at(15.0, T) == T + 2.5 * 15.0
    assert not wrapper_silent(15.0, T, T + 2.5 * 15.0)
    assert wrapper_silent(15.0, T, T + 2.5 * 15.0 + 0.001)
    assert silent_at(None, T) is None and silent_at(15.0, None) is None
