"""File-first state: what the run directories say goes into the catalog as soon as it is
scraped, and Slurm is asked only when the Slurm clock says (:mod:`nsml_hpc.sync.clocks`).

Each sync reads, for its live sessions, the state events the scrape stored and when each
run directory last grew (:func:`read_views`: two queries), derives every session's state with
the one rule of :mod:`nsml_hpc.sync.events_state`, applies the states that are ahead of the
catalog (:func:`ahead_records`), then lets the clock decide whether Slurm is asked
(:func:`decide_query`). When Slurm answers, its answer is reconciled with the files
(:func:`reconcile`): accounting wins every disagreement about an end, and each one is logged.

Everything here is recomputed from the stored events on every sync, so a sync killed between
storing events and applying their state is repaired by the next one.
"""

from __future__ import annotations

import logging
import weakref
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import select as sql_select
from sqlmodel import col

from nsml_hpc.backends.base import SlurmBackend
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import CursorState
from nsml_hpc.catalog.models import EventRecord, JobRecordRow, ScrapeCursor, SessionRecord
from nsml_hpc.catalog.slurm_clock import (
    clock_row,
    note_deferred,
    read_clock,
    record_query,
    want_slurm,
)
from nsml_hpc.config.site_policy import SlurmPolicy
from nsml_hpc.job.layout import EVENTS_FILE, GPU_FILE, METRICS_FILE
from nsml_hpc.slurm.records import JobRecord
from nsml_hpc.slurm.states import TERMINAL_STATES, SessionState
from nsml_hpc.sync.clocks import (
    ClockState,
    Decision,
    Needs,
    after_spending,
    decide,
    silent_at,
    tokens_now,
    wrapper_silent,
)
from nsml_hpc.sync.events_state import (
    STATE_EVENTS,
    FileState,
    disagreement,
    files_ahead,
    is_provisional,
    job_state,
    latest_events,
)

log = logging.getLogger("nsml_hpc.sync")
LIFE_FILES = (METRICS_FILE, EVENTS_FILE, GPU_FILE)
DISTRUSTED = f"{EVENTS_FILE} has lines that are not events (corrupt or cut short)"


@dataclass(frozen=True)
class SessionView:
    """One live session as the catalog and its run directory show it now."""

    session_id: int
    cluster: str
    name: str
    run_dir: str
    state: str
    reason: str | None
    job: JobRecordRow | None
    files: FileState | None
    silent: bool
    silent_at: float | None = None  # a wrapper alive now goes silent then, if nothing new


# What each session's events said, kept per open catalog between the syncs of one process
# (the TUI syncs every second): keyed by what decides it (the session's latest job and the
# events cursor, which moves in the same transaction as any event stored), so a session
# whose events.jsonl did not grow is neither read nor derived again. Only states without a
# problem are kept, with the ``now`` they were derived at: such a state stays valid as time
# goes on (an event "in the future" is a problem, and is derived again on every sync).
_Key = tuple[Any, ...]
_MEMO: weakref.WeakKeyDictionary[Catalog, dict[int, tuple[_Key, float, FileState]]] = (
    weakref.WeakKeyDictionary()
)


def read_views(
    catalog: Catalog,
    sessions: Sequence[SessionRecord],
    jobs: Mapping[int, list[JobRecordRow]],
    now: float,
    *,
    cursors: Mapping[tuple[int, str], CursorState] | None = None,
    covered: Collection[int] = (),
) -> dict[int, SessionView]:
    """The file state of each session's latest job, and whether its wrapper went silent.

    ``cursors``: the scrape cursors this sync already read, current for the sessions in
    ``covered`` (those the scrape did not move); only the others' are read here, and only
    the events of sessions whose state is not known already from an earlier sync of this
    process with the same events cursor."""
    ids = [record.id for record in sessions if record.id is not None]
    if not ids:
        return {}
    known = set(covered) if cursors is not None else set()
    unknown = [session_id for session_id in ids if session_id not in known]
    memo = _MEMO.get(catalog, {})
    kept: dict[int, tuple[_Key, float, FileState]] = {}
    keys: dict[int, _Key] = {}
    derive: list[int] = []
    for record in sessions:
        session_id = record.id  # each ORM attribute read once: a thousand sessions a sync
        if session_id is None:
            continue
        history = jobs.get(session_id, [])
        if not history:
            continue
        key = None
        if cursors is not None and session_id in known:
            events_cursor = cursors.get((session_id, EVENTS_FILE))
            key = (
                record.cluster,
                record.run_dir,
                tuple((row.id, row.job_id) for row in history),
                history[-1].submitted_at,
                None if events_cursor is None else events_cursor.offset,
                None if events_cursor is None else events_cursor.lines,
            )
            keys[session_id] = key
            before = memo.get(session_id)
            if before is not None and before[0] == key and before[1] <= now:
                kept[session_id] = before
                continue
        derive.append(session_id)
    rows: Sequence[Any] = []
    read: list[tuple[int, str, float | None, int]] = []
    with catalog.session() as db:
        if derive:
            rows = db.execute(
                sql_select(
                    col(EventRecord.session_id),
                    col(EventRecord.kind),
                    col(EventRecord.at),
                    col(EventRecord.job_id),
                    col(EventRecord.data_json),
                )
                .where(
                    col(EventRecord.session_id).in_(derive),
                    col(EventRecord.kind).in_(STATE_EVENTS),
                )
                .order_by(col(EventRecord.id))
            ).all()
        if unknown:
            read = [
                (session_id, file, updated_at, malformed)
                for session_id, file, updated_at, malformed in db.execute(
                    sql_select(
                        col(ScrapeCursor.session_id),
                        col(ScrapeCursor.file),
                        col(ScrapeCursor.updated_at),
                        col(ScrapeCursor.malformed),
                    ).where(
                        col(ScrapeCursor.session_id).in_(unknown),
                        col(ScrapeCursor.file).in_(LIFE_FILES),
                    )
                )
            ]
    if cursors is not None and known:
        read.extend(
            (session_id, file, state.updated_at, state.malformed)
            for (session_id, file), state in cursors.items()
            if session_id in known and file in LIFE_FILES
        )
    events = latest_events([tuple(row) for row in rows])
    life: dict[int, float] = {}
    distrusted: set[int] = set()
    for session_id, file, updated_at, malformed in read:
        life[session_id] = max(life.get(session_id, 0.0), updated_at or 0.0)
        if file == EVENTS_FILE and malformed:
            distrusted.add(session_id)
    views: dict[int, SessionView] = {}
    for record in sessions:
        session_id = record.id
        if session_id is None:
            continue
        history = jobs.get(session_id, [])
        job = history[-1] if history else None
        files: FileState | None = None
        if job is not None:
            if session_id in distrusted:
                files = FileState(job.job_id, problem=DISTRUSTED)
            elif session_id in kept:
                files = kept[session_id][2]
            else:
                files = job_state(
                    job.job_id,
                    events.get(session_id, []),
                    known_jobs={row.job_id for row in history[:-1]},
                    not_before=job.submitted_at,
                    now=now,
                )
                key = keys.get(session_id)
                if key is not None and files.problem is None and files.changes_at is None:
                    kept[session_id] = (key, now, files)
        trusted = files is not None and files.problem is None
        heartbeat = files.heartbeat if files else None
        alive_at = life.get(session_id)
        silent = not trusted or wrapper_silent(heartbeat, alive_at, now)
        views[session_id] = SessionView(
            session_id=session_id,
            cluster=record.cluster,
            name=record.name,
            run_dir=record.run_dir,
            state=record.state,
            reason=record.reason,
            job=job,
            files=files,
            silent=silent,
            silent_at=None if silent else silent_at(heartbeat, alive_at),
        )
    _MEMO[catalog] = kept  # only this sync's sessions: ended ones drop out
    return views


def ahead_records(views: Iterable[SessionView]) -> dict[str, dict[str, JobRecord]]:
    """Per cluster, by job id: the file states that are newer than the catalog's."""
    found: dict[str, dict[str, JobRecord]] = defaultdict(dict)
    for view in views:
        if view.job is None or view.files is None:
            continue
        if files_ahead(view.files, view.state, silent=view.silent):
            found[view.cluster][view.job.job_id] = view.files.record(view.job.submitted_at)
    return found


def applied(views: dict[int, SessionView], records: Mapping[str, Mapping[str, JobRecord]]) -> None:
    """The views as they are once ``records`` were applied (in place)."""
    for session_id, view in list(views.items()):
        rec = records.get(view.cluster, {}).get(view.job.job_id if view.job else "")
        if rec is not None:
            views[session_id] = replace(view, state=rec.state, reason=rec.reason)


def notice(
    views: Mapping[int, SessionView],
    fresh: Collection[int],
    troubled: Mapping[int, str],
    warnings: list[str],
) -> dict[str, list[str]]:
    """What the files just showed that only Slurm can explain, per cluster (an end after a
    signal; events that cannot be trusted), with a warning naming the file for the latter.
    Only sessions with new events this sync (``fresh``) or new trouble count: the next syncs
    leave them to the Slurm clock."""
    explain: dict[str, list[str]] = defaultdict(list)
    for session_id, view in sorted(views.items()):
        files = view.files
        if files is None or (session_id not in fresh and session_id not in troubled):
            continue
        if session_id in troubled or files.problem is not None:
            why = troubled.get(session_id) or files.problem or DISTRUSTED
            warnings.append(
                f"{view.name}: {view.run_dir}/{EVENTS_FILE}: {why}; its state comes from Slurm"
            )
            explain[view.cluster].append(f"{view.name}: {why}")
        elif files.unexplained is not None and view.state not in TERMINAL_STATES:
            explain[view.cluster].append(f"{view.name}: {files.unexplained}")
    return explain


def needs_of(
    views: Iterable[SessionView], explain: Sequence[str] = (), *, settling: int = 0
) -> Needs:
    """What the live sessions (ended ones among them are there to be asked again) need from
    Slurm; ``settling``: sessions that ended while accounting's record of their job was
    incomplete (asked again for it, as unconfirmed ones are)."""
    pending, silent, unconfirmed, alive = 0, 0, settling, 0
    for view in views:
        if is_provisional(view.reason) or view.state in TERMINAL_STATES:
            unconfirmed += 1  # an end sync asks about again (provisional, or a legacy LOST)
        elif view.state == SessionState.RUNNING:
            if view.silent:
                silent += 1
            else:
                alive += 1
        else:
            pending += 1
    return Needs(pending, silent, unconfirmed, alive, tuple(explain))


def decide_query(
    catalog: Catalog,
    cluster: str,
    user: str,
    needs: Needs,
    policy: SlurmPolicy,
    now: float,
) -> Decision:
    """The Slurm clock's decision for this cluster now (files' requests are recorded for
    every process first)."""
    if needs.explain:
        want_slurm(catalog, [cluster], user, now, needs.explain[0])
    last_query_at, row = read_clock(catalog, cluster, user)
    clock = ClockState(last_query_at=last_query_at)
    if row is not None:
        clock = ClockState(
            last_query_at=last_query_at,
            wanted_at=row.wanted_at,
            wanted_why=row.wanted_why,
            tokens=row.tokens,
            tokens_at=row.tokens_at,
            last_queue_at=row.last_queue_at,
        )
    decision = decide(needs, clock, policy, now)
    if decision.deferred_by_ceiling:
        note_deferred(catalog, cluster, user)
    return decision


class CountingBackend:
    """The cluster's backend, counting the Slurm commands sync sends through it."""

    def __init__(self, backend: SlurmBackend) -> None:
        self._backend = backend
        self.commands = 0
        self.queued = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def query(self, job_ids: Sequence[str], since: float) -> list[JobRecord]:
        self.commands += 1
        return self._backend.query(job_ids, since)

    def queue(self, job_ids: Sequence[str]) -> list[JobRecord]:
        self.commands += 1
        self.queued = True
        return self._backend.queue(job_ids)

    def as_backend(self) -> SlurmBackend:
        return cast(SlurmBackend, self)


def spend(
    catalog: Catalog,
    cluster: str,
    user: str,
    policy: SlurmPolicy,
    now: float,
    counted: CountingBackend,
) -> None:
    """Take what a query cost from the user's bucket on this cluster."""
    spend_commands(
        catalog,
        cluster,
        user,
        policy,
        now,
        counted.commands,
        queued_at=now if counted.queued else None,
    )


def spend_commands(
    catalog: Catalog,
    cluster: str,
    user: str,
    policy: SlurmPolicy,
    now: float,
    commands: int,
    *,
    queued_at: float | None = None,
) -> None:
    """Take ``commands`` Slurm commands from the user's bucket on this cluster (the sync's
    sacct/squeue, the cluster view's sinfo/squeue: one allowance for all of them)."""
    row = clock_row(catalog, cluster, user)
    clock = ClockState(
        tokens=row.tokens if row is not None else None,
        tokens_at=row.tokens_at if row is not None else 0.0,
    )
    tokens, tokens_at = after_spending(clock, policy, now, commands)
    record_query(
        catalog,
        cluster,
        user,
        commands=commands,
        tokens=tokens,
        tokens_at=tokens_at,
        queued_at=queued_at,
        exists=row is not None,
    )


def tokens_left(
    catalog: Catalog, cluster: str, user: str, policy: SlurmPolicy, now: float
) -> float:
    _, row = read_clock(catalog, cluster, user)
    if row is None:
        return policy.burst
    return tokens_now(ClockState(tokens=row.tokens, tokens_at=row.tokens_at), policy, now)


def reconcile(
    records: dict[str, JobRecord], views: Iterable[SessionView], disagreements: list[str]
) -> dict[str, JobRecord]:
    """Slurm's answers, except where the files are newer (a job that started or ended a
    moment ago, which accounting does not show yet). Accounting's end wins over the files'
    end; every such disagreement is logged."""
    for view in views:
        if view.job is None or view.files is None:
            continue
        answer = records.get(view.job.job_id)
        if answer is None:
            continue
        why = None if is_provisional(answer.reason) else disagreement(view.files, answer)
        if why is not None:
            text = f"{view.name}: {why}"
            log.warning(text)
            disagreements.append(text)
        if files_ahead(view.files, answer.state, silent=view.silent):
            mine = view.files.record(view.job.submitted_at)
            records[view.job.job_id] = replace(
                mine, started_at=answer.started_at or mine.started_at
            )
    return records
