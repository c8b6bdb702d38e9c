"""Two clocks: reading run directories (cheap, local) and asking Slurm (shared, costly). Pure.

**The file clock** paces a live view (the TUI, ``logs -f``): every ``sync_interval_seconds``
(1 s by default) while sessions are live, so that what a wrapper writes (start, end, exit code)
shows within about a second; backing off to :data:`IDLE_FILE_SECONDS` while nothing is live.

**The Slurm clock** decides, per user and cluster, whether a sync asks Slurm at all
(:func:`decide`). The files already say when a job starts and how it ends; Slurm is asked only
for what they cannot tell:

- sessions waiting to start (only Slurm knows they are queued, and why), sessions whose
  wrapper went silent (killed, node failure, out of memory, time limit: the wrapper cannot
  write its own death), and ends seen in files that accounting has not confirmed yet: every
  ``floor_seconds`` (60 s by default);
- running sessions whose wrapper shows signs of life (its heartbeat): confirmed every
  :data:`CONFIRM_FACTOR` floors;
- earlier only when a user acts (submit, stop, an explicit refresh) or the files show
  something only Slurm can explain (an end after a signal): after ``action_floor_seconds``;
- never while nothing is live.

Above all of it, a ceiling: at most ``queries_per_hour`` Slurm commands per user and cluster
in any hour (a token bucket of :attr:`SlurmPolicy.burst` commands refilled at
``(queries_per_hour - burst)`` an hour, so no hour-long window ever holds more). A query that
would need squeue as well (pending reasons, jobs sacct does not show) uses it only while the
bucket holds two tokens; pending reasons are re-read every :data:`REASONS_FACTOR` floors.
"""

from __future__ import annotations

from dataclasses import dataclass

from nsml_hpc.config.site_policy import SlurmPolicy

CONFIRM_FACTOR = 4.0  # running sessions with a live wrapper: asked every 4 floors
REASONS_FACTOR = 5.0  # a pending job's reason (squeue) re-read every 5 floors
SILENT_FACTOR = 2.5  # no sign of life for 2.5 heartbeats: the wrapper went silent
IDLE_FILE_SECONDS = 5.0  # the file clock while nothing is live
RECENTLY_ENDED_SECONDS = 120.0  # keep scraping a little after the end (slow shared FS)
# What versions before per-user syncs wrote when ANY user's sacct missed a job: perhaps only
# because it was someone else's. Such sessions are re-checked by their owner's sync.
LEGACY_LOST_REASON = "Slurm no longer knows this job"


@dataclass(frozen=True)
class Needs:
    """What one cluster's sessions (of one user) need from Slurm right now."""

    pending: int = 0  # waiting to start, suspended, preempted: only Slurm says
    silent: int = 0  # running, but the wrapper went quiet (or its events are not trusted)
    unconfirmed: int = 0  # ends seen in files or squeue, awaiting accounting
    alive: int = 0  # running, the wrapper's heartbeat is fresh
    explain: tuple[str, ...] = ()  # just seen in files, only Slurm can explain it

    @property
    def live(self) -> int:
        return self.pending + self.silent + self.unconfirmed + self.alive


@dataclass(frozen=True)
class ClockState:
    """The shared record of one user's Slurm clock on one cluster (kept in the catalog)."""

    last_query_at: float = 0.0
    wanted_at: float = 0.0  # a user acted, or files asked for Slurm, at this time
    wanted_why: str | None = None
    tokens: float | None = None  # None: a full bucket
    tokens_at: float = 0.0
    last_queue_at: float = 0.0  # squeue was last used (pending reasons) at this time


@dataclass(frozen=True)
class Decision:
    due: bool
    period: float | None  # the floor the shared poll claim enforces (None: nothing to ask)
    why: str
    may_queue: bool = False  # squeue too, if sacct leaves something open
    refresh_reasons: bool = False  # re-read the reasons of jobs already known to be pending
    deferred_by_ceiling: bool = False
    # When this decision turns (the next one is due) if nothing else changes: None while
    # nothing is live (only a change in the catalog or the files makes one due).
    due_at: float | None = None


def tokens_now(clock: ClockState, policy: SlurmPolicy, now: float) -> float:
    if clock.tokens is None:
        return policy.burst
    refill = max(0.0, now - clock.tokens_at) * policy.refill_per_second
    return min(policy.burst, clock.tokens + refill)


def after_spending(
    clock: ClockState, policy: SlurmPolicy, now: float, commands: int
) -> tuple[float, float]:
    """The bucket after ``commands`` Slurm commands at ``now``: (tokens, tokens_at)."""
    return tokens_now(clock, policy, now) - commands, now


def period_for(needs: Needs, clock: ClockState, policy: SlurmPolicy) -> tuple[float | None, str]:
    """How long after the last query the next one is due, and why."""
    if needs.live == 0:
        return None, "nothing live"
    if needs.explain:
        return policy.action_floor_seconds, needs.explain[0]
    if clock.wanted_at > clock.last_query_at:
        return policy.action_floor_seconds, clock.wanted_why or "asked for"
    if needs.pending or needs.silent or needs.unconfirmed:
        parts = [
            f"{count} {word}"
            for count, word in (
                (needs.pending, "waiting"),
                (needs.silent, "silent"),
                (needs.unconfirmed, "unconfirmed"),
            )
            if count
        ]
        return policy.floor_seconds, ", ".join(parts)
    return policy.floor_seconds * CONFIRM_FACTOR, f"{needs.alive} running (confirming)"


def decide(needs: Needs, clock: ClockState, policy: SlurmPolicy, now: float) -> Decision:
    """Whether this sync asks Slurm (the shared claim with ``period`` still has the last
    word: of many processes at the same instant, one asks)."""
    period, why = period_for(needs, clock, policy)
    if period is None:
        return Decision(False, None, why)
    if now - clock.last_query_at < period:
        return Decision(False, period, why, due_at=clock.last_query_at + period)
    tokens = tokens_now(clock, policy, now)
    if tokens < 1.0:
        refill = policy.refill_per_second
        due_at = now + (1.0 - tokens) / refill if refill > 0 else None
        return Decision(False, period, why, deferred_by_ceiling=True, due_at=due_at)
    refresh = now - clock.last_queue_at >= policy.floor_seconds * REASONS_FACTOR
    return Decision(True, period, why, may_queue=tokens >= 2.0, refresh_reasons=refresh, due_at=now)


def wrapper_silent(heartbeat: float | None, last_life: float | None, now: float) -> bool:
    """A wrapper with no heartbeat (an older one), or none seen for :data:`SILENT_FACTOR`
    beats, is silent: only Slurm can say whether its job still runs."""
    at = silent_at(heartbeat, last_life)
    return at is None or now > at


def silent_at(heartbeat: float | None, last_life: float | None) -> float | None:
    """When a wrapper last seen alive at ``last_life`` goes silent (None: it is already)."""
    if heartbeat is None or last_life is None:
        return None
    return last_life + SILENT_FACTOR * heartbeat


@dataclass(frozen=True)
class FileClock:
    """The file clock of a live view: ``interval`` while sessions are live, doubling up to
    :data:`IDLE_FILE_SECONDS` (or ``interval``, if longer) while none is."""

    interval: float

    def next_wait(self, current: float, *, live: bool) -> float:
        if live:
            return self.interval
        return min(max(current, self.interval) * 2, max(IDLE_FILE_SECONDS, self.interval))
