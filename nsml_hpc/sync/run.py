"""One sync: ingest what the jobs wrote to their run directories since the last sync, take the
state their wrappers' events show (file-first, :mod:`nsml_hpc.sync.file_first`), and ask each
cluster about its live sessions (ONE sacct call per cluster) when the Slurm clock says so
(:mod:`nsml_hpc.sync.clocks`): for what files cannot tell, and to confirm what they told.

Kind to the cluster: the poll floor is shared through the catalog, so however many processes
sync, a cluster is asked at most once per floor. A job missing from sacct right after
submission waits out a grace period; only then is squeue asked (once, for all such jobs).

On a shared catalog each sync is its caller's: it asks Slurm only about the caller's own
sessions (``catalog.user``), and of those only the ones whose cluster account is the one this
cluster's backend runs as (the profile's user over SSH, the login user locally). Under
``PrivateData=jobs`` nobody's sacct sees anyone else's jobs, so another user's session is
never asked about, never marked LOST and never written by this sync; its owner's syncs keep it
current. A session an earlier version marked LOST that way (reason :data:`LEGACY_LOST_REASON`)
is asked about again by its owner's next sync and takes whatever state Slurm reports.

Degraded, not frozen: when sacct fails (slurmdbd down) but squeue answers, the live states come
from ONE squeue call for all the cluster's jobs, and the report says so once per cluster
(``SyncReport.degraded``). A job squeue no longer lists is left as it is (never LOST on that
evidence); a job that ended is seen as ended when squeue still lists it that way or its run
directory has the wrapper's ``ended`` event. Such an end is provisional (its reason says so):
the next sync that sacct answers asks about it again and takes the accounting truth.

Provisional ends (from squeue, or from the job's events) are asked about at every Slurm floor,
but not forever: one whose job sacct still does not list ten floors (at least ten minutes)
after the end keeps its state, with a reason that says accounting never recorded the job
(:func:`never_recorded_reason`), and is not asked about again.
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from sqlalchemy import event as sa_event
from sqlmodel import col, select

from nsml_hpc.backends.base import SlurmBackend
from nsml_hpc.capture.discover import FoundFile
from nsml_hpc.capture.ingest import DISCOVERY_FILE, captured_files, scrape_captured
from nsml_hpc.capture.printed import printed_outputs
from nsml_hpc.catalog.allocations import Allocation, allocations_of, store_allocations
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.gpu import gpu_states, store_gpu_state
from nsml_hpc.catalog.metrics import (
    CursorState,
    EventIngest,
    MetricIngest,
    load_cursors,
    store_ingests,
    touch_cursors,
)
from nsml_hpc.catalog.models import JobRecordRow, SessionRecord, StateChange
from nsml_hpc.catalog.polls import claim_poll, record_poll_result
from nsml_hpc.catalog.sessions import (
    discard_session,
    jobs_of,
    live_sessions,
    mark_submitted,
    stale_reservations,
)
from nsml_hpc.catalog.slurm_clock import want_slurm
from nsml_hpc.config.settings import Settings
from nsml_hpc.errors import (
    BackendError,
    ConfigError,
    ConnectionFailed,
    NotFoundError,
    NsmlError,
)
from nsml_hpc.job.layout import EVENTS_FILE, GPU_FILE, METRICS_FILE
from nsml_hpc.runfiles.idle import IdleState, advance
from nsml_hpc.runfiles.scrape import (
    MAX_READ_BYTES,
    EventBatch,
    MetricBatch,
    complete_lines,
    parse_event_lines,
    parse_metric_lines,
)
from nsml_hpc.slurm.records import JobRecord
from nsml_hpc.slurm.states import TERMINAL_STATES, SessionState, live_until
from nsml_hpc.snapshots.sync import sync_snapshots
from nsml_hpc.submit.rundir import read_job_id_marker, remove_run_dir
from nsml_hpc.sync import file_first
from nsml_hpc.sync.clocks import LEGACY_LOST_REASON as LEGACY_LOST_REASON
from nsml_hpc.sync.clocks import RECENTLY_ENDED_SECONDS
from nsml_hpc.sync.events_state import PROVISIONAL_PREFIX, is_provisional
from nsml_hpc.sync.gcpause import gc_paused
from nsml_hpc.sync.watch import Watcher

STALE_RESERVATION_SECONDS = 3600.0
SINCE_MARGIN_SECONDS = 300.0
REASONLESS_STATES = frozenset({SessionState.RUNNING, SessionState.COMPLETED})
# The reason of an end seen while accounting was down; such sessions are asked about again, as
# are those of every reason with the same prefix (an end seen in the job's events).
PROVISIONAL_REASON = f"{PROVISIONAL_PREFIX} accounting (sacct) unavailable"
# A provisional end whose job sacct still does not list this long after the end (in Slurm
# floors, and seconds: whichever is longer) keeps its state with a reason that says accounting
# never recorded the job, and is asked about no more (slurmdbd records an end within seconds;
# a job it lost, or never had, would otherwise be asked about every floor forever).
UNRECORDED_AFTER_FLOORS = 10.0
UNRECORDED_AFTER_SECONDS = 600.0

SCRAPED_FILES = (METRICS_FILE, EVENTS_FILE, GPU_FILE)

BackendFor = Callable[[str], SlurmBackend]


log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    queried: list[str] = field(default_factory=list)
    skipped_by_floor: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    state_changes: int = 0
    new_points: int = 0
    new_events: int = 0
    malformed_lines: int = 0
    sessions_scraped: int = 0
    warnings: list[str] = field(default_factory=list)
    new_snapshots: int = 0
    snapshot_problems: dict[str, str] = field(default_factory=dict)  # "session:tag" -> why
    # Clusters whose sacct failed while squeue answered: states came from squeue (one line each)
    degraded: dict[str, str] = field(default_factory=dict)
    # Why each cluster was (or was not) asked: the Slurm clock's reason
    slurm_clock: dict[str, str] = field(default_factory=dict)
    # Ends the job's events showed that accounting then reported otherwise (accounting won)
    disagreements: list[str] = field(default_factory=list)


@dataclass
class _Degraded:
    """What a degraded sync still has to settle after the scrape: jobs squeue did not list,
    or listed as ended (their exit code and end time are in the run directory, if anywhere)."""

    sessions: list[SessionRecord] = field(default_factory=list)
    unsettled: dict[str, JobRecord | None] = field(default_factory=dict)  # job id -> squeue's


def sync(
    catalog: Catalog,
    settings: Settings,
    backend_for: BackendFor,
    *,
    now: float | None = None,
    clusters: Collection[str] | None = None,
    refresh: bool = False,
) -> SyncReport:
    """Bring the catalog up to date with the run directories and, when the Slurm clock says
    (or ``refresh``: a user asked), with Slurm (of ``clusters`` only, when given). A cluster
    that cannot be reached is reported in ``errors`` and skipped; the others are synced as
    usual. The cyclic garbage collector is paused while it runs (:mod:`nsml_hpc.sync.gcpause`:
    its full collections over the ORM heap were a third of a steady sync)."""
    with gc_paused():
        return _sync(catalog, settings, backend_for, now=now, clusters=clusters, refresh=refresh)


def _sync(
    catalog: Catalog,
    settings: Settings,
    backend_for: BackendFor,
    *,
    now: float | None,
    clusters: Collection[str] | None,
    refresh: bool,
) -> SyncReport:
    now = time.time() if now is None else now
    report = SyncReport()
    report.warnings.extend(settings.site.warnings)  # a site policy file that cannot be used
    watcher = Watcher()
    backend_for = watcher.backends(backend_for)
    unreachable: set[str] = set()
    wanted = set(clusters) if clusters is not None else None
    user = catalog.user
    _drop_stale_reservations(catalog, backend_for, now, wanted, unreachable)
    live = [
        record
        for record in [
            *live_sessions(catalog, now, owner=catalog.user),
            *_provisional_sessions(catalog),
            *_wrongly_lost(catalog),
        ]
        if wanted is None or record.cluster in wanted
    ]
    # A session already asked about for its state (a provisional end above all) is never
    # settling too: that would ask twice and leave sacct's record of its end unapplied.
    live_ids = {record.id for record in live}
    recent = _recently_ended(catalog, now - RECENTLY_ENDED_SECONDS)
    settling = [
        record
        for record in _settling_sessions(catalog, recent, wanted)
        if record.id not in live_ids
    ]
    settling_ids = {record.id for record in settling}
    by_cluster: dict[str, list[SessionRecord]] = defaultdict(list)
    for record in [*live, *settling]:
        by_cluster[record.cluster].append(record)
    if refresh and by_cluster:
        want_slurm(catalog, by_cluster, user, now, "asked for (refresh)")
    jobs = jobs_of(catalog, [record.id for record in [*live, *settling] if record.id is not None])
    targets = _sessions_to_scrape(live, recent, wanted)
    troubled: dict[int, str] = {}
    found: dict[int, list[FoundFile]] = {}
    seen: dict[tuple[int, str], CursorState] = {}
    moved: set[int] = set()
    with_new_events = _scrape(
        catalog,
        targets,
        backend_for,
        report,
        now,
        unreachable,
        found=found,
        troubled=troubled,
        seen=seen,
        moved=moved,
        watcher=watcher,
    )
    # The cursors the scrape read are still current where it moved none (one query saved).
    covered = {target.session_id for target in targets} - moved
    views = file_first.read_views(catalog, live, jobs, now, cursors=seen, covered=covered)
    report.state_changes += _apply_file_states(catalog, live, jobs, views, now)
    explain = file_first.notice(views, with_new_events, troubled, report.warnings)
    degraded: dict[str, _Degraded] = {}
    policy = settings.slurm_policy
    for cluster, asked in sorted(by_cluster.items()):
        if cluster in unreachable:
            continue
        cluster_views = [views[r.id] for r in asked if r.id in views]
        needs = file_first.needs_of(
            cluster_views,
            explain.get(cluster, ()),
            settling=sum(1 for record in asked if record.id in settling_ids),
        )
        decision = file_first.decide_query(catalog, cluster, user, needs, policy, now)
        report.slurm_clock[cluster] = decision.why
        watcher.due(decision.due_at)
        if not decision.due or not claim_poll(catalog, cluster, now, decision.period or 0.0):
            report.skipped_by_floor.append(cluster)
            continue
        report.queried.append(cluster)
        pending_settle: dict[str, JobRecord | None] = {}
        counted: file_first.CountingBackend | None = None
        try:
            counted = file_first.CountingBackend(backend_for(cluster))
            backend = counted.as_backend()
            asked = _run_as(backend, asked)
            sessions = [record for record in asked if record.id not in settling_ids]
            records, why = _ask_cluster(
                backend,
                asked,
                jobs,
                settings,
                now,
                pending_settle,
                catalog.user,
                may_queue=decision.may_queue,
                refresh_reasons=decision.refresh_reasons,
            )
        except NsmlError as exc:
            report.errors[cluster] = str(exc)
            record_poll_result(catalog, cluster, str(exc))
            if isinstance(exc, ConnectionFailed | ConfigError | NotFoundError):
                unreachable.add(cluster)
            continue
        finally:
            if counted is not None:
                file_first.spend(catalog, cluster, user, policy, now, counted)
        record_poll_result(catalog, cluster, None)
        if why is not None:
            report.degraded[cluster] = why
            degraded[cluster] = _Degraded(sessions, pending_settle)
        else:
            records.update(_never_recorded(sessions, jobs, records, policy.floor_seconds, now))
        records = file_first.reconcile(records, cluster_views, report.disagreements)
        report.state_changes += _apply_records(catalog, sessions, jobs, records, now)
        _store_allocations(catalog, asked, jobs, records)
    for state in degraded.values():
        report.state_changes += _settle_from_run_dirs(catalog, state, views, now)
    snapshots = sync_snapshots(
        catalog,
        [
            (target.session_id, target.cluster, target.run_dir)
            for target in targets
            if target.cluster not in unreachable
        ],
        lambda cluster: backend_for(cluster).files,
        now,
        sessions_with_new_events=sorted(with_new_events),
        names={record.id: record.name for record in live if record.id is not None},
        found=found,
    )
    report.new_snapshots = snapshots.added
    report.snapshot_problems = snapshots.problems
    watcher.due(snapshots.recheck_at)
    if clusters is None:  # a sync of some clusters only says nothing about the others
        for record in live:
            watcher.due(live_until(record.state, record.ended_at))
        for target in targets:
            if target.ended_at is not None:
                watcher.due(target.ended_at + RECENTLY_ENDED_SECONDS)
        for view in views.values():
            watcher.due(view.silent_at)
            watcher.due(view.files.changes_at if view.files is not None else None)
        _record_watch(catalog, settings, watcher, report, now)
    log.info(
        "sync: %d live session(s); asked %s%s; %d state change(s), %d new point(s), "
        "%d event(s), %d malformed line(s)%s",
        len(live),
        ", ".join(report.queried) or "no cluster",
        f" (poll floor skipped {', '.join(report.skipped_by_floor)})"
        if report.skipped_by_floor
        else "",
        report.state_changes,
        report.new_points,
        report.new_events,
        report.malformed_lines,
        f"; errors: {report.errors}" if report.errors else "",
    )
    return report


def _apply_file_states(
    catalog: Catalog,
    live: list[SessionRecord],
    jobs: dict[int, list[JobRecordRow]],
    views: dict[int, file_first.SessionView],
    now: float,
) -> int:
    """File-first: the states the wrappers' events show that are newer than the catalog's,
    applied like Slurm's answers (one transaction per cluster); the views and the live
    records then show them too."""
    ahead = file_first.ahead_records(views.values())
    if not ahead:
        return 0  # the views show the live records as they are (the steady case)
    changes = 0
    for cluster, records in sorted(ahead.items()):
        sessions = [record for record in live if record.cluster == cluster]
        changes += _apply_records(catalog, sessions, jobs, records, now)
    file_first.applied(views, ahead)
    for record in live:
        view = views.get(record.id or -1)
        if view is not None:
            record.state, record.reason = view.state, view.reason
    return changes


def _latest_job(jobs: dict[int, list[JobRecordRow]], record: SessionRecord) -> JobRecordRow | None:
    history = jobs.get(record.id or -1, [])
    return history[-1] if history else None


def _ask_cluster(
    backend: SlurmBackend,
    sessions: list[SessionRecord],
    jobs: dict[int, list[JobRecordRow]],
    settings: Settings,
    now: float,
    unsettled: dict[str, JobRecord | None],
    asked_as: str = "",
    *,
    may_queue: bool = True,
    refresh_reasons: bool = True,
) -> tuple[dict[str, JobRecord], str | None]:
    """Records by job id: ONE sacct call, plus at most ONE squeue call; and, when sacct failed
    but squeue answered, why (the sync is then degraded, see the module doc, and ``unsettled``
    gets the jobs left for :func:`_settle_from_run_dirs`).

    squeue is asked only when it knows something sacct cannot tell: why a job is pending
    (slurmdbd keeps the reason of a pending job at "None"), and whether a job that sacct
    still does not show after the grace period is queued or lost; and only if ``may_queue``
    (the Slurm clock's ceiling allows a second command). Reasons the catalog already has are
    kept unless ``refresh_reasons``.
    """
    latest = [job for job in (_latest_job(jobs, record) for record in sessions) if job]
    if not latest:
        return {}, None
    since = min(job.submitted_at or now for job in latest) - SINCE_MARGIN_SECONDS
    try:
        accounted = backend.query(query_ids(job.job_id for job in latest), since)
    except ConnectionFailed:
        raise
    except BackendError as exc:
        if not may_queue:
            raise
        return _ask_queue_only(backend, latest, exc, unsettled)
    found = {rec.job_id: rec for rec in accounted}
    provisional = {
        job.job_id
        for record in sessions
        if is_provisional(record.reason) and (job := _latest_job(jobs, record)) is not None
    }
    overdue = [
        job.job_id
        for job in latest
        if job.job_id not in found
        and job.job_id not in provisional  # accounting may still be catching up: wait
        and now - (job.submitted_at or now) > settings.submit_grace_seconds
    ]
    reasonless = [
        job_id
        for job_id, rec in found.items()
        if rec.state == SessionState.PENDING and rec.reason is None
    ]
    if not refresh_reasons or not may_queue:
        reasonless = _keep_known_reasons(found, reasonless, latest)
    if not may_queue:  # asked at the next query the ceiling allows a second command
        overdue, reasonless = [], []
    if overdue or reasonless:
        queued = {rec.job_id: rec for rec in backend.queue(overdue + reasonless)}
        for job_id in reasonless:
            if job_id in queued:
                found[job_id] = _merge_queue_record(found[job_id], queued[job_id])
        for job_id in overdue:
            found[job_id] = queued.get(job_id) or JobRecord(
                job_id=job_id,
                state=SessionState.LOST,
                slurm_state="UNKNOWN",
                reason=lost_reason(asked_as),
            )
    return found, None


def _keep_known_reasons(
    found: dict[str, JobRecord], reasonless: list[str], latest: list[JobRecordRow]
) -> list[str]:
    """Pending jobs whose reason the catalog has keep it (``found`` is updated); the others
    are returned: only for those is squeue worth its cost now."""
    known = {job.job_id: job.reason for job in latest if job.state == SessionState.PENDING}
    left = []
    for job_id in reasonless:
        reason = known.get(job_id)
        if reason:
            found[job_id] = replace(found[job_id], reason=reason)
        else:
            left.append(job_id)
    return left


def _ask_queue_only(
    backend: SlurmBackend,
    latest: list[JobRecordRow],
    sacct_error: BackendError,
    unsettled: dict[str, JobRecord | None],
) -> tuple[dict[str, JobRecord], str]:
    """The degraded query: live states from ONE squeue call. Exit codes and end times are not
    in squeue's answer: an end is provisional, and what the catalog knows is kept."""
    try:
        queued = {rec.job_id: rec for rec in backend.queue([job.job_id for job in latest])}
    except ConnectionFailed:
        raise
    except BackendError as exc:
        raise BackendError(f"{sacct_error}; squeue failed too: {exc}") from exc
    found: dict[str, JobRecord] = {}
    for job in latest:
        rec = queued.get(job.job_id)
        if rec is None or rec.state in TERMINAL_STATES:
            unsettled[job.job_id] = rec  # gone from squeue, or ended: see the run directory
        if rec is not None:
            found[job.job_id] = _from_queue(job, rec)
    why = (
        f"{sacct_error}; states from squeue until accounting answers (exit codes and end "
        "times of jobs that end meanwhile are provisional)"
    )
    return found, why


def _from_queue(job: JobRecordRow, queued: JobRecord) -> JobRecord:
    """squeue's state and reason over what the catalog knows of the job: its start, and its
    exit code, end and elapsed time as accounting (or, for an end already settled, the run
    directory) last said; a new end has none of them yet."""
    ended = queued.state in TERMINAL_STATES
    new_end = ended and job.state != queued.state
    return replace(
        queued,
        reason=PROVISIONAL_REASON if ended else queued.reason,
        exit_code=None if new_end else job.exit_code,
        submitted_at=job.submitted_at,
        started_at=job.started_at,
        ended_at=job.ended_at if ended and not new_end else None,
        elapsed_s=None if new_end else job.elapsed_s,
        node_list=queued.node_list or job.node_list,
    )


def _provisional_sessions(catalog: Catalog) -> list[SessionRecord]:
    """The caller's sessions whose end accounting has not confirmed yet (seen in their events,
    or while accounting was down): asked about again."""
    with catalog.session() as db:
        return list(
            db.exec(
                select(SessionRecord).where(
                    col(SessionRecord.reason).startswith(PROVISIONAL_PREFIX),
                    col(SessionRecord.state).in_(list(TERMINAL_STATES)),
                    SessionRecord.owner == catalog.user,
                )
            ).all()
        )


def never_recorded_reason(job_id: str) -> str:
    """Why a session keeps the end its files (or squeue) showed without accounting's word."""
    return f"accounting never recorded job {job_id}: the end shown is the job's own"


def _never_recorded(
    sessions: list[SessionRecord],
    jobs: dict[int, list[JobRecordRow]],
    records: dict[str, JobRecord],
    floor: float,
    now: float,
) -> dict[str, JobRecord]:
    """Provisional ends whose job accounting still does not know (sacct answered without it)
    once the end is :data:`UNRECORDED_AFTER_FLOORS` Slurm floors old (and at least
    :data:`UNRECORDED_AFTER_SECONDS`): they keep their state, exit code and times, and their
    reason says accounting never recorded the job; they are not asked about again."""
    patience = max(UNRECORDED_AFTER_SECONDS, UNRECORDED_AFTER_FLOORS * floor)
    found: dict[str, JobRecord] = {}
    for record in sessions:
        if not is_provisional(record.reason):  # the common case first: no job lookup
            continue
        job = _latest_job(jobs, record)
        if job is None or job.job_id in records:
            continue
        if record.state not in TERMINAL_STATES:
            continue
        ended = job.ended_at or record.ended_at or record.updated_at
        if now - ended < patience:
            continue
        state = SessionState(record.state)
        found[job.job_id] = JobRecord(
            job_id=job.job_id,
            state=state,
            slurm_state=state.value,
            reason=never_recorded_reason(job.job_id),
            exit_code=job.exit_code,
            submitted_at=job.submitted_at,
            started_at=job.started_at,
            ended_at=job.ended_at or record.ended_at,
            elapsed_s=job.elapsed_s,
            node_list=job.node_list,
        )
    return found


def lost_reason(owner: str) -> str:
    """Why a session is LOST now: its owner's own sacct and squeue no longer know the job."""
    return f"{LEGACY_LOST_REASON} (asked as its owner {owner})" if owner else LEGACY_LOST_REASON


def _wrongly_lost(catalog: Catalog) -> list[SessionRecord]:
    """The caller's sessions an earlier version marked LOST perhaps only because another
    user's sacct could not see them: asked about again (once: Slurm's answer, or a LOST with
    this version's reason, replaces the old one)."""
    with catalog.session() as db:
        return list(
            db.exec(
                select(SessionRecord).where(
                    SessionRecord.owner == catalog.user,
                    SessionRecord.state == SessionState.LOST,
                    SessionRecord.reason == LEGACY_LOST_REASON,
                )
            ).all()
        )


def _run_as(backend: SlurmBackend, sessions: list[SessionRecord]) -> list[SessionRecord]:
    """The sessions whose jobs run as the account this backend asks as: only those can its
    sacct see (another account's are left as they are, never marked LOST)."""
    account = backend.user
    return [record for record in sessions if not account or record.user == account]


def _settle_from_run_dirs(
    catalog: Catalog,
    degraded: _Degraded,
    views: dict[int, file_first.SessionView],
    now: float,
) -> int:
    """Jobs of a degraded sync that squeue no longer lists, or lists as ended: their end, by
    the one rule of :mod:`nsml_hpc.sync.events_state`. squeue's state (when it lists the job)
    with the exit code and time of the wrapper's ``ended`` line; without squeue's, a clean end
    of the events; without either, the job is left as it is."""
    if not degraded.unsettled:
        return 0
    jobs = jobs_of(catalog, [record.id for record in degraded.sessions if record.id is not None])
    records: dict[str, JobRecord] = {}
    sessions: list[SessionRecord] = []
    for record in degraded.sessions:
        job = _latest_job(jobs, record)
        view = views.get(record.id or -1)
        if job is None or view is None or job.job_id not in degraded.unsettled:
            continue
        files = view.files
        if files is None or files.job_id != job.job_id or files.problem is not None:
            continue
        if files.exit_code is None or files.ended_at is None:
            continue  # no end in the events, or one that asked for a requeue
        if files.state in (SessionState.REQUEUED, SessionState.PENDING):
            continue
        listed = degraded.unsettled[job.job_id]
        if listed is None and not files.ended:
            continue  # ended after a signal: only accounting can say how
        state = listed.state if listed is not None else files.state
        assert state is not None
        start = job.started_at or files.started_at
        records[job.job_id] = JobRecord(
            job_id=job.job_id,
            state=state,
            slurm_state=listed.slurm_state if listed is not None else state.value,
            reason=PROVISIONAL_REASON,
            exit_code=files.exit_code,
            submitted_at=job.submitted_at,
            started_at=start,
            ended_at=files.ended_at,
            elapsed_s=max(0.0, files.ended_at - start) if start is not None else None,
            node_list=(listed.node_list if listed is not None else None) or job.node_list,
        )
        sessions.append(record)
    if not records:
        return 0
    return _apply_records(catalog, sessions, jobs, records, now)


def query_ids(job_ids: Iterable[str]) -> list[str]:
    """What to ask sacct for: array tasks (``392_4``) by their array's id (``392``), because
    sacct answers for a task that has not started only as part of its array's range line."""
    return sorted({job_id.split("_", 1)[0] for job_id in job_ids}, key=lambda j: (len(j), j))


def _merge_queue_record(accounting: JobRecord, queued: JobRecord) -> JobRecord:
    """Accounting times with slurmctld's fresher state and pending reason. A job slurmctld
    already has as ended keeps accounting's record until accounting has its exit code too
    (squeue has none: taking its FAILED now would record exit 0)."""
    if queued.state in TERMINAL_STATES:
        return accounting
    return replace(
        accounting, state=queued.state, slurm_state=queued.slurm_state, reason=queued.reason
    )


def _job_changed(job: JobRecordRow, rec: JobRecord) -> bool:
    """A state, reason, exit code or time that matters changed. A running job's growing
    Elapsed alone is not a change (readers compute it from the start time), so a steady
    sync of many running jobs writes nothing."""
    return (job.state, job.reason, job.exit_code, job.ended_at) != (
        rec.state,
        rec.reason,
        rec.exit_code,
        rec.ended_at,
    ) or (rec.started_at is not None and job.started_at != rec.started_at)


def _apply_records(
    catalog: Catalog,
    sessions: list[SessionRecord],
    jobs: dict[int, list[JobRecordRow]],
    records: dict[str, JobRecord],
    now: float,
) -> int:
    """Write what changed, in one transaction; returns the number of state changes."""
    changed: dict[int, tuple[JobRecordRow, JobRecord]] = {}
    for session in sessions:
        job = _latest_job(jobs, session)
        if job is not None and session.id is not None and job.job_id in records:
            rec = records[job.job_id]
            if (
                rec.state in REASONLESS_STATES
                and rec.reason is not None
                and not is_provisional(rec.reason)
            ):
                rec = replace(rec, reason=None)  # Slurm leaves stale pending reasons behind
            if _job_changed(job, rec):
                changed[session.id] = (job, rec)
    if not changed:
        return 0
    changes = 0
    with catalog.session() as db:
        rows = db.exec(select(SessionRecord).where(col(SessionRecord.id).in_(list(changed))))
        for row in rows:
            job, rec = changed[row.id or 0]
            job.state, job.reason, job.exit_code = rec.state, rec.reason, rec.exit_code
            job.started_at = rec.started_at or job.started_at
            job.ended_at, job.elapsed_s = rec.ended_at, rec.elapsed_s
            job.node_list = rec.node_list or job.node_list
            db.add(job)
            confirmed = row.state == rec.state and is_provisional(row.reason)
            if (row.state, row.reason) != (rec.state, rec.reason) and not confirmed:
                changes += 1
                db.add(
                    StateChange(
                        session_id=row.id or 0,
                        at=now,
                        state=rec.state,
                        reason=rec.reason,
                        job_id=rec.job_id,
                    )
                )
            row.state, row.reason, row.exit_code = rec.state, rec.reason, rec.exit_code
            # the session's first start: accounting's (a little before the wrapper's line)
            if rec.started_at is not None and (
                row.started_at is None or rec.started_at < row.started_at
            ):
                row.started_at = rec.started_at
            if rec.state in TERMINAL_STATES:
                row.ended_at = rec.ended_at or now
            else:
                row.ended_at = rec.ended_at if rec.state == SessionState.PREEMPTED else None
            row.elapsed_s = recorded_elapsed(row.started_at, row.ended_at, rec.elapsed_s)
            row.updated_at = now
            db.add(row)
    return changes


def recorded_elapsed(
    first_start: float | None, ended_at: float | None, slurm_elapsed: float | None
) -> float | None:
    """The elapsed time a session keeps: Slurm's Elapsed counts only the last run of a
    requeued job, so an ended session keeps ``end - first start`` when that is larger (the
    time it showed while running: :func:`nsml_hpc.sessions.views.elapsed_seconds`)."""
    if first_start and ended_at and ended_at > first_start:
        return max(slurm_elapsed or 0.0, ended_at - first_start)
    return slurm_elapsed


def _recently_ended(catalog: Catalog, since: float) -> list[SessionRecord]:
    """The caller's sessions that ended since ``since`` (another user's are their syncs'):
    those that ended for good, and any other with an end time (a preempted one)."""
    with catalog.session() as db:
        return list(
            db.exec(
                select(SessionRecord).where(
                    col(SessionRecord.ended_at) >= since,
                    col(SessionRecord.owner) == catalog.user,
                )
            ).all()
        )


def _settling_sessions(
    catalog: Catalog, recently_ended: list[SessionRecord], wanted: set[str] | None
) -> list[SessionRecord]:
    """Sessions that ended recently while accounting's record of their job was incomplete
    (slurmdbd can report a finished job before it has the job's partition and time limit):
    the same sacct call asks about them again, for their allocation only (:func:`sync` leaves
    out those it asks about for their state anyway, such as a provisional end)."""
    recent = [
        record
        for record in recently_ended
        if record.state in TERMINAL_STATES and (wanted is None or record.cluster in wanted)
    ]
    if not recent:
        return []
    jobs = jobs_of(catalog, [record.id for record in recent if record.id is not None])
    latest = {record.id: _latest_job(jobs, record) for record in recent}
    known = allocations_of(catalog, [job.id for job in latest.values() if job and job.id])
    return [
        record
        for record in recent
        if (job := latest[record.id]) is not None
        and job.id is not None
        and job.id in known
        and not known[job.id][1]
    ]


def _store_allocations(
    catalog: Catalog,
    sessions: list[SessionRecord],
    jobs: dict[int, list[JobRecordRow]],
    records: dict[str, JobRecord],
) -> None:
    """What Slurm says each latest job got (from the same sacct answer: no extra call)."""
    found: dict[int, tuple[int, Allocation, bool]] = {}
    for session in sessions:
        job = _latest_job(jobs, session)
        if job is None or job.id is None or session.id is None or job.job_id not in records:
            continue
        rec = records[job.job_id]
        found[job.id] = (
            session.id,
            Allocation(rec.partition, rec.account, rec.qos, rec.gpus, rec.time_limit, rec.nodes),
            rec.allocation_complete,
        )
    store_allocations(catalog, found, latest=set(found))


class ScrapeTarget(NamedTuple):  # a tuple: a thousand are built every sync
    session_id: int
    cluster: str
    run_dir: str
    ended_at: float | None
    name: str = ""


def _sessions_to_scrape(
    live: list[SessionRecord], recently_ended: list[SessionRecord], wanted: set[str] | None
) -> list[ScrapeTarget]:
    """The caller's live sessions (those that just ended included) and the caller's sessions
    that ended recently (``recently_ended``), whose last lines a slow shared file system may
    show late (of the ``wanted`` clusters only, when given). Other users' run directories are
    their syncs'."""
    targets = {
        record.id: ScrapeTarget(record.id, record.cluster, record.run_dir, None, record.name)
        for record in live
        if record.id is not None
    }
    for record in recently_ended:
        if record.id is not None and (wanted is None or record.cluster in wanted):
            targets[record.id] = ScrapeTarget(
                record.id, record.cluster, record.run_dir, record.ended_at, record.name
            )
    return [targets[key] for key in sorted(targets)]


def _scrape(
    catalog: Catalog,
    targets: list[ScrapeTarget],
    backend_for: BackendFor,
    report: SyncReport,
    now: float,
    unreachable: set[str],
    found: dict[int, list[FoundFile]] | None = None,
    troubled: dict[int, str] | None = None,
    seen: dict[tuple[int, str], CursorState] | None = None,
    moved: set[int] | None = None,
    watcher: Watcher | None = None,
) -> set[int]:
    """Ingest what the jobs appended, one cluster at a time: ONE sizes call for all its
    metrics, events and gpu.jsonl files (and the Slurm output of sessions that capture printed
    metrics), then ONE read_many of only the new bytes of the files that grew (in batches of
    at most MAX_READ_BYTES); then each session's captured logs. A cluster whose connection
    fails is left for the next sync (cursors move with their points, so nothing is lost or
    doubled). Returns the sessions that got new events (their job runs change); ``found``
    receives the checkpoint files each session's capture walk saw; ``troubled`` the sessions
    whose events.jsonl had lines that are not events or shrank (see :func:`_shrunk_events`);
    ``seen`` the cursors as read before the scrape, ``moved`` the sessions whose metrics,
    events or gpu.jsonl cursor it moved (their ``seen`` entries are out of date)."""
    troubled = {} if troubled is None else troubled
    moved = set() if moved is None else moved
    with_new_events: set[int] = set()
    ids = [target.session_id for target in targets]
    names = {target.session_id: target.name for target in targets}
    cursors = load_cursors(catalog, ids)
    if seen is not None:
        seen.update(cursors)
    printed = printed_outputs(catalog, ids)
    gpu = gpu_states(catalog, ids)
    known_captured = captured_files(cursors)
    discovered = {
        session_id: state.updated_at
        for (session_id, file), state in cursors.items()
        if file == DISCOVERY_FILE
    }
    empty = CursorState()
    by_cluster: dict[str, list[ScrapeTarget]] = defaultdict(list)
    for target in targets:
        by_cluster[target.cluster].append(target)
    for cluster, sessions in sorted(by_cluster.items()):
        if cluster in unreachable:
            continue
        scraped = {
            t.session_id: [*SCRAPED_FILES, *printed.files_of(t.session_id)] for t in sessions
        }
        try:
            files = backend_for(cluster).files
            paths = [f"{t.run_dir}/{name}" for t in sessions for name in scraped[t.session_id]]
            sizes = files.sizes(paths)
        except NsmlError as exc:
            report.errors.setdefault(cluster, str(exc))
            unreachable.add(cluster)
            continue
        report.sessions_scraped += len(sessions)
        grown: list[tuple[int, str, CursorState, str, int]] = []
        shrunk: list[EventIngest] = []
        for target in sessions:
            for file in scraped[target.session_id]:
                cursor = cursors.get((target.session_id, file), empty)
                path = f"{target.run_dir}/{file}"
                size = sizes.get(path)
                if size is not None and size > cursor.offset:
                    grown.append((target.session_id, file, cursor, path, size))
                elif size is not None and size < cursor.offset and file == EVENTS_FILE:
                    shrunk.append(_shrunk_events(target.session_id, cursor, size, troubled))
                # else: missing, unchanged, or truncated (its points are already in)
        try:
            for batch in _read_batches(grown):
                chunks = files.read_many(
                    [
                        (path, cursor.offset, end - cursor.offset)
                        for _, _, cursor, path, end in batch
                    ]
                )
                metric_items: list[MetricIngest] = []
                event_items: list[EventIngest] = []
                outputs: list[tuple[int, str, CursorState, bytes]] = []
                for (session_id, file, cursor, path, _), raw in zip(batch, chunks, strict=True):
                    if file not in SCRAPED_FILES:  # a Slurm output: read after the batch
                        outputs.append((session_id, file, cursor, raw))
                        continue
                    chunk, new_offset = complete_lines(raw, cursor.offset)
                    if not chunk and len(raw) >= MAX_READ_BYTES and file != GPU_FILE:
                        # One line longer than a whole read can never complete within one:
                        # skip what was read; the rest of that line ends at its newline and is
                        # counted there as one malformed line.
                        report.warnings.append(
                            f"{path}: a line longer than {MAX_READ_BYTES:,} bytes at byte "
                            f"{cursor.offset} skipped"
                        )
                        new_offset = cursor.offset + len(raw)
                        if file == METRICS_FILE:
                            skipped = MetricIngest(session_id, MetricBatch(), cursor, new_offset)
                            metric_items.append(skipped)
                        else:
                            event_items.append(
                                EventIngest(session_id, EventBatch(), cursor, new_offset)
                            )
                        continue
                    if not chunk:
                        continue
                    if file == GPU_FILE:
                        moved.add(session_id)
                        state = advance(gpu.get(session_id, IdleState()), chunk)
                        store_gpu_state(
                            catalog, session_id, state, cursor, new_offset, chunk.count(b"\n"), now
                        )
                    elif file == METRICS_FILE:
                        parsed = parse_metric_lines(chunk, cursor.lines, session_id)
                        metric_items.append(MetricIngest(session_id, parsed, cursor, new_offset))
                    else:
                        events = parse_event_lines(chunk, session_id, cursor.lines)
                        event_items.append(EventIngest(session_id, events, cursor, new_offset))
                        if events.events:
                            with_new_events.add(session_id)
                # Printed metrics, without those the same batch brings through report().
                metric_items += printed.ingest(outputs, metric_items, report.warnings)
                # Every changed file of the batch in ONE transaction, offsets with their rows.
                event_items += shrunk
                shrunk = []
                moved.update(item.session_id for item in metric_items)
                moved.update(item.session_id for item in event_items)
                store_ingests(
                    catalog, metric_items, event_items, now, printed_sessions=printed.sessions
                )
                _note_malformed_events(event_items, troubled)
                for item in metric_items:
                    report.new_points += len(item.batch.points)
                    report.malformed_lines += item.batch.malformed
                    _warn_refused(report, names, item.session_id, METRICS_FILE, item.batch)
                for event_item in event_items:
                    report.new_events += len(event_item.batch.events)
                    report.malformed_lines += event_item.batch.malformed
                    _warn_refused(
                        report, names, event_item.session_id, EVENTS_FILE, event_item.batch
                    )
            moved.update(item.session_id for item in shrunk)
            store_ingests(catalog, [], shrunk, now)  # when no file grew
            report.malformed_lines += len(shrunk)
            looked: list[int] = []
            for target in sessions:
                captured = scrape_captured(
                    catalog,
                    files,
                    target.session_id,
                    target.run_dir,
                    cursors,
                    known_captured.get(target.session_id, []),
                    discovered.get(target.session_id),
                    now,
                    ended_at=target.ended_at,
                    printed_sessions=printed.sessions,
                )
                if found is not None and captured.checkpoints is not None:
                    found[target.session_id] = captured.checkpoints
                if watcher is not None:
                    watcher.due(captured.next_look_at)
                report.new_points += captured.points
                report.malformed_lines += captured.malformed
                report.warnings.extend(captured.warnings)
                if captured.looked:
                    looked.append(target.session_id)
            touch_cursors(catalog, looked, DISCOVERY_FILE, now)
        except NsmlError as exc:
            report.errors.setdefault(cluster, str(exc))
            unreachable.add(cluster)
    return with_new_events


def _record_watch(
    catalog: Catalog, settings: Settings, watcher: Watcher, report: SyncReport, now: float
) -> None:
    """The watch list of this sync (:mod:`nsml_hpc.sync.watchlist`), or none where this sync
    cannot say what the next one would do: then the next ``ps`` syncs in full."""
    from nsml_hpc.catalog.quickread import Fallback, open_quick
    from nsml_hpc.sync import watchlist

    url = settings.catalog_url
    for record in stale_reservations(catalog, math.inf):  # a submit in flight, or crashed
        watcher.due(record.created_at + STALE_RESERVATION_SECONDS)
    backlog = watcher.backlog()
    why = (
        watcher.doubt
        or (f"bytes left to read in {backlog[0]}" if backlog else None)
        or ("errors" if report.errors or report.degraded else None)
        # what the full path prints (warnings, malformed lines) a skipped sync would not
        or ("warnings" if report.warnings or report.malformed_lines else None)
        or ("site policy warnings" if settings.site.warnings else None)
        or ("due now" if watcher.valid_until <= now else None)
    )
    last = _WRITTEN.pop(catalog, None)
    if why is None and last is not None and last.holds(catalog, settings, watcher):
        _WRITTEN[catalog] = last  # the list on disk says all this one would: kept as it is
        return
    reader = open_quick(url) if why is None else None
    if reader is None:
        log.debug("sync: no watch list (%s)", why or "not a plain local SQLite catalog")
        watchlist.forget(url)
        return
    try:
        writes = _catalog_writes(catalog)
        path = watchlist.write(
            catalog_url=url,
            settings=settings,
            reader=reader,
            since=now - RECENTLY_ENDED_SECONDS,
            valid_until=watcher.valid_until,
            paths=watcher.paths,
            now=now,
        )
        _WRITTEN[catalog] = _Written(
            url,
            watchlist.signature(str(path)),
            watchlist.settings_digest(settings),
            watcher.valid_until,
            dict(watcher.paths),
            writes,
        )
    except (OSError, Fallback) as exc:
        log.debug("sync: no watch list (%s)", exc)
        watchlist.forget(url)
    finally:
        reader.close()


@dataclass(frozen=True)
class _Written:
    """The watch list this process last wrote for a catalog, and what it was written from."""

    url: str
    file: tuple[int, int] | None  # the list file's (size, mtime_ns) right after writing
    settings: str  # their digest
    valid_until: float
    paths: dict[str, tuple[int, int] | None]
    writes: int  # statements this process had sent that may write, when it was written

    def holds(self, catalog: Catalog, settings: Settings, watcher: Watcher) -> bool:
        """Whether that list is the one this sync would write: no statement that writes since
        (by this process: another's write changes the fingerprint, and ``ps`` then syncs, the
        safe way), the same paths with the same signatures, the same time it holds until, the
        same settings, and its file as it was written (not replaced or removed)."""
        from nsml_hpc.sync import watchlist

        return (
            self.writes == _catalog_writes(catalog)
            and self.valid_until == watcher.valid_until
            and self.paths == watcher.paths
            and self.url == settings.catalog_url
            and self.settings == watchlist.settings_digest(settings)
            and self.file is not None
            and watchlist.signature(str(watchlist.watch_file(self.url))) == self.file
        )


# Per open catalog: its last watch list written by this process (a sync that wrote nothing
# and watched the same files keeps it rather than compute and write the same list again), and
# a count of the statements sent through it that may write.
_WRITTEN: weakref.WeakKeyDictionary[Catalog, _Written] = weakref.WeakKeyDictionary()
_WRITES: weakref.WeakKeyDictionary[Catalog, list[int]] = weakref.WeakKeyDictionary()


def _catalog_writes(catalog: Catalog) -> int:
    """Statements other than SELECT this process sent through ``catalog`` (counted from the
    first call on)."""
    counter = _WRITES.get(catalog)
    if counter is None:
        counter = _WRITES[catalog] = [0]

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if statement.lstrip()[:6].upper() != "SELECT":
                counter[0] += 1

        sa_event.listen(catalog.engine, "before_cursor_execute", count)
    return counter[0]


def _shrunk_events(
    session_id: int, cursor: CursorState, size: int, troubled: dict[int, str]
) -> EventIngest:
    """An events.jsonl shorter than what was read of it (cut short, or replaced): its events
    are in the catalog already; reading goes on from its new end, and it counts as one
    malformed line (so its events are not trusted for the state any more)."""
    troubled[session_id] = f"shrank from {cursor.offset} to {size} bytes"
    return EventIngest(session_id, EventBatch(malformed=1), cursor, size)


def _note_malformed_events(items: list[EventIngest], troubled: dict[int, str]) -> None:
    for item in items:
        if item.batch.malformed and item.session_id not in troubled:
            troubled[item.session_id] = (
                f"{item.batch.malformed} line(s) that are not events (corrupt or cut short)"
            )


def _warn_refused(
    report: SyncReport, names: dict[int, str], session_id: int, file: str, batch: Any
) -> None:
    """Refused lines as warnings naming the session, the file and the line."""
    label = names.get(session_id) or f"session {session_id}"
    report.warnings.extend(f"{label}: {file} line {n}: {why}" for n, why in batch.problems)


def _read_batches(
    grown: list[tuple[int, str, CursorState, str, int]],
) -> list[list[tuple[int, str, CursorState, str, int]]]:
    """Reads grouped so that one call fetches at most MAX_READ_BYTES (each file's share capped
    at that too; what is left waits for the next sync). The last field becomes the offset to
    read up to."""
    batches: list[list[tuple[int, str, CursorState, str, int]]] = [[]]
    total = 0
    for session_id, file, cursor, path, size in grown:
        want = min(MAX_READ_BYTES, size - cursor.offset)
        if batches[-1] and total + want > MAX_READ_BYTES:
            batches.append([])
            total = 0
        batches[-1].append((session_id, file, cursor, path, cursor.offset + want))
        total += want
    return [batch for batch in batches if batch]


def _drop_stale_reservations(
    catalog: Catalog,
    backend_for: BackendFor,
    now: float,
    wanted: set[str] | None,
    unreachable: set[str],
) -> None:
    """Finish what a crashed ``submit`` left: adopt it if sbatch had answered, else undo it.
    Clusters that cannot be reached now are left for a later sync."""
    for record in stale_reservations(catalog, now - STALE_RESERVATION_SECONDS):
        if record.id is None or record.cluster in unreachable:
            continue
        if wanted is not None and record.cluster not in wanted:
            continue
        try:
            files = backend_for(record.cluster).files
            job_id = read_job_id_marker(files, record.run_dir)
            if job_id is not None:
                mark_submitted(catalog, record.id, job_id=job_id, cluster=record.cluster, now=now)
            else:
                discard_session(catalog, record.id)
                remove_run_dir(files, record.run_dir)
        except (ConnectionFailed, ConfigError, NotFoundError):
            unreachable.add(record.cluster)
