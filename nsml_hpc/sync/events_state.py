"""The state of a session's job as its run directory tells it: the ONE rule for "state from
events" (pure: the wrapper's events in, a state out).

The job wrapper (:mod:`nsml_hpc.job.wrapper`) writes ``started`` (host, GPUs, restart count,
heartbeat period), ``signal``, ``ended`` (exit code, the signal that killed the training
process, ``requeue`` when it stopped for a requeue), ``requeued`` / ``requeue_failed`` and
``resumed``. From those alone the front end knows, as soon as the lines appear:

- ``started`` and nothing after it: RUNNING (since then, on that host);
- a clean ``ended`` (no signal before it or in it): COMPLETED (exit 0) or FAILED (its exit code);
  such an end is *provisional* until accounting confirms it (:data:`FROM_EVENTS_REASON`);
- ``ended`` with ``requeue``: REQUEUED; then ``requeued``: PENDING (waiting to start again).

What the events cannot tell is left to Slurm, and said so (:attr:`FileState.unexplained`): an
end after a signal (cancelled? timed out? preempted?), a requeue that failed. Events that cannot
be trusted give no state at all (:attr:`FileState.problem`): a line of another job, a time
before the job was submitted or in the future, a field of the wrong kind. Then sync asks Slurm.

Which of two states is newer, the run directory's or the catalog's (or Slurm's answer), is
:func:`files_ahead`; the rest of sync applies a file state only where that says so, so the
file-first path and the Slurm path can never undo each other.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nsml_hpc.slurm.records import JobRecord
from nsml_hpc.slurm.states import TERMINAL_STATES, SessionState

# The kinds of event lines that say something about the job's state (the query reads only these).
STATE_EVENTS = ("started", "signal", "ended", "requeued", "requeue_failed")
# Compute nodes' clocks may differ from the front end's this much before a time is impossible.
CLOCK_SKEW_SECONDS = 300.0
# Every reason that marks an end as not yet confirmed by accounting starts with this.
PROVISIONAL_PREFIX = "provisional:"
FROM_EVENTS_REASON = f"{PROVISIONAL_PREFIX} from the job's events, until accounting confirms it"
MAX_EXIT_CODE = 255
WAITING = frozenset({SessionState.SUBMITTED, SessionState.PENDING, SessionState.REQUEUED})


def is_provisional(reason: str | None) -> bool:
    """Whether a session's reason marks its end as not yet confirmed by accounting."""
    return reason is not None and reason.startswith(PROVISIONAL_PREFIX)


@dataclass(frozen=True)
class Event:
    """One stored event line (``EventRecord``): kind, time, job id, and its other fields."""

    kind: str
    at: float | None
    job_id: str | None
    data: Mapping[str, Any] = field(default_factory=dict)
    readable: bool = True  # False: its stored fields were not a JSON object

    @classmethod
    def stored(cls, kind: str, at: float | None, job_id: str | None, data_json: str) -> Event:
        """From a catalog row."""
        try:
            data = json.loads(data_json or "{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return cls(kind, at, job_id, {}, readable=False)
        return cls(kind, at, job_id, data)


@dataclass(frozen=True)
class FileState:
    """What the events of one job id say."""

    job_id: str
    state: SessionState | None = None  # None: the events say nothing (yet), or are not trusted
    exit_code: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    host: str | None = None
    restart: int = 0
    heartbeat: float | None = None  # seconds between the wrapper's ``alive`` lines
    unexplained: str | None = None  # why only Slurm can say how the job ended
    problem: str | None = None  # why the events cannot be trusted
    # When the clock alone changes what these events say (an event dated in the future is one
    # no longer); None: it does not
    changes_at: float | None = None

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL_STATES

    def record(self, submitted_at: float | None, reason: str = FROM_EVENTS_REASON) -> JobRecord:
        """The state as a record sync applies like one of Slurm's (an end is provisional)."""
        assert self.state is not None
        start = self.started_at
        return JobRecord(
            job_id=self.job_id,
            state=self.state,
            slurm_state=self.state.value,
            reason=reason if self.ended else None,
            exit_code=self.exit_code,
            submitted_at=submitted_at,
            started_at=start,
            ended_at=self.ended_at if self.ended else None,
            elapsed_s=(
                max(0.0, self.ended_at - start)
                if self.ended and self.ended_at is not None and start is not None
                else None
            ),
            node_list=self.host,
        )


def _count(value: Any) -> int | None:
    """A non-negative JSON integer (never a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0 < value < 1e6 else None


def job_state(
    job_id: str,
    events: Iterable[Event],
    *,
    known_jobs: Collection[str] = (),
    not_before: float | None,
    now: float,
) -> FileState:
    """What ``events`` (one session's, in file order) say about its job ``job_id``.

    Events of the session's earlier jobs (``known_jobs``) are history and skipped; an event of
    any other job id, an impossible time (before ``not_before`` or after ``now``, give or take
    :data:`CLOCK_SKEW_SECONDS`, or going back in time), an exit code or restart count of the
    wrong kind: the state is None and :attr:`FileState.problem` says why.
    """
    state = FileState(job_id)
    signalled: str | None = None
    last_at: float | None = None
    for event in events:
        if event.job_id != job_id:
            if event.job_id is not None and event.job_id in known_jobs:
                continue
            other = "no job id" if event.job_id is None else f"job {event.job_id}"
            return _bad(job_id, f"a {event.kind!r} event of {other}, not of this job ({job_id})")
        why, changes_at = _impossible_time(event, not_before, now, last_at)
        if why is not None:
            return _replace(_bad(job_id, why), None, changes_at=changes_at)
        if not event.readable:
            return _bad(job_id, f"a {event.kind!r} event whose fields cannot be read")
        last_at = event.at
        data = event.data
        if event.kind == "started":
            restart = _count(data.get("restart_count", 0))
            if restart is None:
                return _bad(
                    job_id, f"a 'started' event with restart_count {data['restart_count']!r}"
                )
            host = data.get("host")
            state = FileState(
                job_id,
                SessionState.RUNNING,
                started_at=event.at,
                host=str(host)[:200] if isinstance(host, str) and host else None,
                restart=restart,
                heartbeat=_positive(data.get("heartbeat")),
            )
            signalled = None
        elif event.kind == "signal":
            signalled = str(data.get("signal") or "a signal")
        elif event.kind == "ended":
            code = _count(data.get("exit_code"))
            if code is None or code > MAX_EXIT_CODE:
                return _bad(job_id, f"an 'ended' event with exit code {data.get('exit_code')!r}")
            state = _ended(state, event, code, signalled)
        elif event.kind == "requeued":
            state = _replace(state, SessionState.PENDING, exit_code=None, ended_at=None)
        elif event.kind == "requeue_failed":
            state = _replace(
                state,
                None,
                unexplained="the wrapper could not requeue the job: only Slurm knows how it ends",
            )
    return state


def _bad(job_id: str, why: str) -> FileState:
    return FileState(job_id, problem=why)


def _impossible_time(
    event: Event, not_before: float | None, now: float, last_at: float | None
) -> tuple[str | None, float | None]:
    """Why the event's time is impossible (None: it is not), and when the clock alone makes
    it possible (an event dated in the future)."""
    at = event.at
    if at is None:
        return f"a {event.kind!r} event without a time", None
    if not_before is not None and at < not_before - CLOCK_SKEW_SECONDS:
        return f"a {event.kind!r} event dated {at:.0f}, before the job was submitted", None
    if at > now + CLOCK_SKEW_SECONDS:
        return f"a {event.kind!r} event dated {at:.0f}, in the future", at - CLOCK_SKEW_SECONDS
    if last_at is not None and at < last_at - CLOCK_SKEW_SECONDS:
        return f"a {event.kind!r} event dated {at:.0f}, long before the event above it", None
    return None, None


def _replace(state: FileState, new: SessionState | None, **changes: Any) -> FileState:
    values = {**state.__dict__, "state": new, **changes}
    return FileState(**values)


def _ended(state: FileState, event: Event, code: int, signalled: str | None) -> FileState:
    data = event.data
    if data.get("requeue"):
        return _replace(state, SessionState.REQUEUED, exit_code=code, ended_at=event.at)
    killed = data.get("signal")
    if killed or signalled:
        why = f"the job got {killed or signalled} before it ended"
        return _replace(
            state,
            None,
            exit_code=code,
            ended_at=event.at,
            unexplained=f"{why}: only Slurm knows whether it was cancelled, timed out or preempted",
        )
    ended = SessionState.COMPLETED if code == 0 else SessionState.FAILED
    return _replace(state, ended, exit_code=code, ended_at=event.at)


def files_ahead(files: FileState, current: SessionState | str, *, silent: bool) -> bool:
    """Whether the run directory's state is newer than ``current`` (the catalog's state, or
    what Slurm just answered), so that it is the one to show.

    A clean end is ahead of any state that is not an end; a start is ahead of waiting (the
    accounting record of a job that just started may still say PENDING) while the wrapper
    shows signs of life; a requeue the wrapper made is ahead of RUNNING, and its ``requeued``
    (waiting again) ahead of RUNNING and of the requeue's end (REQUEUED). An end, once it is
    one, is never undone from files; anything else is Slurm's to say.
    """
    if files.state is None or files.problem is not None:
        return False
    current = SessionState(current)
    if current in TERMINAL_STATES:
        return False
    if files.ended:
        return True
    if files.state == SessionState.RUNNING:
        return current in WAITING and not silent
    if files.state == SessionState.REQUEUED:
        return current == SessionState.RUNNING
    if files.state == SessionState.PENDING:  # ``requeued``: after the requeue's end too
        return current in (SessionState.RUNNING, SessionState.REQUEUED)
    return False


def disagreement(files: FileState, answer: JobRecord) -> str | None:
    """How accounting's final answer differs from the end the events showed (None: agrees)."""
    if not files.ended or answer.state not in TERMINAL_STATES:
        return None
    if (files.state, files.exit_code) == (answer.state, answer.exit_code):
        return None
    return (
        f"job {answer.job_id}: its events said {files.state} (exit {files.exit_code}), "
        f"accounting says {answer.state} (exit {answer.exit_code}); accounting wins"
    )


def latest_events(
    rows: Sequence[tuple[int, str, float | None, str | None, str]],
) -> dict[int, list[Event]]:
    """Stored event rows ``(session_id, kind, at, job_id, data_json)`` in id order, by session."""
    found: dict[int, list[Event]] = {}
    for session_id, kind, at, job_id, data_json in rows:
        found.setdefault(session_id, []).append(Event.stored(kind, at, job_id, data_json))
    return found
