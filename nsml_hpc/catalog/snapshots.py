"""Snapshot, lineage and job-run rows: what a scan of a snapshot folder stores, pins, the
claim that makes a deletion safe against forks and a second gc, and the reads behind
``model ls``, ``model du``, ``show`` and gc.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, func, insert, update
from sqlmodel import Session, col, select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import EventRecord, MetricPoint, SessionRecord
from nsml_hpc.catalog.snapshot_models import (
    FoundCheckpointRecord,
    JobRunRecord,
    LineageRecord,
    SnapshotRecord,
    SnapshotScan,
)
from nsml_hpc.errors import NotFoundError
from nsml_hpc.job.snapshot_format import Manifest

RUN_EVENTS = ("started", "ended", "requeued", "requeue_failed", "requeue_refused")


@dataclass(frozen=True)
class ScannedSnapshot:
    """A snapshot folder as a scan found it: its manifest, or why it is damaged."""

    tag: str
    dir_mtime_ns: int
    manifest: Manifest | None
    problem: str | None = None


@dataclass
class ScanChanges:
    added: list[str]
    updated: list[str]
    vanished: list[str]


@dataclass(frozen=True)
class ScannedFound:
    """A checkpoint file the training code wrote, as a walk of its folder saw it."""

    path: str  # relative to the run directory
    tag: str
    kind: str
    step: int | None
    metrics: dict[str, float | None]
    size: int
    mtime_ns: int
    problem: str | None = None  # "being written ..." while the file still changes


# --- reads ------------------------------------------------------------------------------------


def scan_states(catalog: Catalog, session_ids: Sequence[int]) -> dict[int, int]:
    """``snapshots/`` mtime (ns) at the last scan, by session, in one query."""
    if not session_ids:
        return {}
    with catalog.session() as db:
        rows = db.exec(
            select(SnapshotScan.session_id, SnapshotScan.dir_mtime_ns).where(
                col(SnapshotScan.session_id).in_(list(session_ids))
            )
        ).all()
    return {session_id: mtime for session_id, mtime in rows}


def snapshots_of(
    catalog: Catalog, session_ids: Sequence[int], *, include_deleting: bool = False
) -> dict[int, list[SnapshotRecord]]:
    """Snapshot rows by session, oldest first (by creation), for many sessions at once."""
    found: dict[int, list[SnapshotRecord]] = {session_id: [] for session_id in session_ids}
    if not session_ids:
        return found
    query = select(SnapshotRecord).where(col(SnapshotRecord.session_id).in_(list(session_ids)))
    if not include_deleting:
        query = query.where(col(SnapshotRecord.deleting).is_(False))
    query = query.order_by(col(SnapshotRecord.created_at), col(SnapshotRecord.id))
    with catalog.session() as db:
        for row in db.exec(query).all():
            found[row.session_id].append(row)
    return found


def all_snapshots(catalog: Catalog, *, include_deleting: bool = False) -> list[SnapshotRecord]:
    query = select(SnapshotRecord)
    if not include_deleting:
        query = query.where(col(SnapshotRecord.deleting).is_(False))
    with catalog.session() as db:
        return list(db.exec(query.order_by(col(SnapshotRecord.id))).all())


def get_snapshot(catalog: Catalog, session_id: int, name: str, tag: str) -> SnapshotRecord:
    with catalog.session() as db:
        row = db.exec(
            select(SnapshotRecord).where(
                SnapshotRecord.session_id == session_id,
                SnapshotRecord.tag == tag,
                col(SnapshotRecord.deleting).is_(False),
            )
        ).first()
    if row is None:
        raise NotFoundError(
            f"session {name} has no snapshot {tag!r} (see: nsml-hpc model ls {name})"
        )
    return row


# --- scans ------------------------------------------------------------------------------------


def _fill(row: SnapshotRecord, scanned: ScannedSnapshot, now: float) -> None:
    row.dir_mtime_ns = scanned.dir_mtime_ns
    row.seen_at = now
    row.problem = scanned.problem
    manifest = scanned.manifest
    if manifest is None:
        return
    row.step = manifest.step
    row.metrics_json = json.dumps(manifest.metrics, sort_keys=True)
    row.bytes = manifest.bytes
    row.file_count = len(manifest.files)
    row.created_at = manifest.created
    row.job_id = manifest.job_id
    row.restart_count = manifest.restart_count


def store_scan(
    catalog: Catalog,
    session_id: int,
    changed: list[ScannedSnapshot],
    present: set[str],
    dir_mtime_ns: int,
    now: float,
) -> ScanChanges:
    """Apply one scan of a session's snapshot folder, in one transaction: ``changed`` are the
    folders (re)read, ``present`` every snapshot folder name seen. Rows whose folder is gone
    are dropped (unless a deletion claimed them: gc finishes those)."""
    result = ScanChanges([], [], [])
    with catalog.session() as db:
        found = select(FoundCheckpointRecord.snapshot_id).where(
            FoundCheckpointRecord.session_id == session_id
        )
        rows = {
            row.tag: row
            for row in db.exec(
                select(SnapshotRecord).where(
                    SnapshotRecord.session_id == session_id,
                    col(SnapshotRecord.id).not_in(found),
                )
            ).all()
        }
        for scanned in changed:
            row = rows.get(scanned.tag)
            if row is not None and row.deleting:
                continue  # a deletion in progress owns it
            if row is None:
                if scanned.manifest is None and scanned.problem is None:
                    continue
                row = SnapshotRecord(
                    session_id=session_id,
                    tag=scanned.tag,
                    created_at=scanned.manifest.created if scanned.manifest else now,
                )
                result.added.append(scanned.tag)
            else:
                result.updated.append(scanned.tag)
            _fill(row, scanned, now)
            db.add(row)
        for tag, row in rows.items():
            if tag not in present and not row.deleting:
                db.delete(row)
                result.vanished.append(tag)
        scan = db.get(SnapshotScan, session_id)
        if scan is None:
            scan = SnapshotScan(session_id=session_id)
        scan.dir_mtime_ns = dir_mtime_ns
        scan.scanned_at = now
        db.add(scan)
    return result


# --- checkpoints the training code wrote ----------------------------------------------------------


def found_records(catalog: Catalog, session_ids: Sequence[int]) -> dict[int, FoundCheckpointRecord]:
    """The found-checkpoint rows of ``session_ids``, by snapshot id (one query)."""
    if not session_ids:
        return {}
    with catalog.session() as db:
        rows = db.exec(
            select(FoundCheckpointRecord).where(
                col(FoundCheckpointRecord.session_id).in_(list(session_ids))
            )
        ).all()
    return {row.snapshot_id: row for row in rows}


def metrics_at_steps(
    catalog: Catalog, session_id: int, steps: Sequence[int]
) -> dict[int, dict[str, float | None]]:
    """The session's metric values recorded at each of ``steps`` (the last one per name)."""
    if not steps:
        return {}
    found: dict[int, dict[str, float | None]] = {}
    with catalog.session() as db:
        rows = db.exec(
            select(MetricPoint.step, MetricPoint.name, MetricPoint.value)
            .where(MetricPoint.session_id == session_id, col(MetricPoint.step).in_(list(steps)))
            .order_by(col(MetricPoint.id))
        ).all()
    for step, name, value in rows:
        if step is not None:
            found.setdefault(step, {})[name] = value
    return found


def store_found(
    catalog: Catalog,
    session_id: int,
    scanned: Sequence[ScannedFound],
    now: float,
    *,
    complete: bool = True,
) -> ScanChanges:
    """Apply one walk's checkpoint files of a session, in one transaction: new files become
    snapshot rows (with their found-checkpoint row), changed ones are updated, and (when the
    walk was ``complete``) rows whose file is gone are dropped, unless a deletion claimed them."""
    result = ScanChanges([], [], [])
    with catalog.session() as db:
        links = {
            row.path: row
            for row in db.exec(
                select(FoundCheckpointRecord).where(FoundCheckpointRecord.session_id == session_id)
            ).all()
        }
        rows = {
            row.id: row
            for row in db.exec(
                select(SnapshotRecord).where(
                    col(SnapshotRecord.id).in_([link.snapshot_id for link in links.values()])
                )
            ).all()
        }
        tags = set(
            db.exec(select(SnapshotRecord.tag).where(SnapshotRecord.session_id == session_id)).all()
        )
        present = set()
        for item in scanned:
            present.add(item.path)
            link = links.get(item.path)
            row = rows.get(link.snapshot_id) if link is not None else None
            if row is not None and row.deleting:
                continue
            if link is not None and row is not None:
                unchanged = (
                    link.mtime_ns == item.mtime_ns
                    and row.bytes == item.size
                    and row.problem == item.problem
                    and row.metrics_json == json.dumps(item.metrics, sort_keys=True)
                )
                if unchanged:
                    continue
                result.updated.append(item.tag)
            elif item.tag in tags:
                continue  # the tag is taken (a hashed long path met another): left out
            else:
                row = SnapshotRecord(session_id=session_id, tag=item.tag, created_at=0.0)
                db.add(row)
                db.flush()
                assert row.id is not None
                link = FoundCheckpointRecord(
                    snapshot_id=row.id, session_id=session_id, kind=item.kind, path=item.path
                )
                tags.add(item.tag)
                result.added.append(item.tag)
            assert link is not None
            row.step = item.step
            row.metrics_json = json.dumps(item.metrics, sort_keys=True)
            row.bytes = item.size
            row.file_count = 1
            row.created_at = item.mtime_ns / 1e9
            row.problem = item.problem
            row.dir_mtime_ns = item.mtime_ns
            row.seen_at = now
            link.kind, link.mtime_ns = item.kind, item.mtime_ns
            db.add(row)
            db.add(link)
        if complete:
            for path, link in links.items():
                row = rows.get(link.snapshot_id)
                if path not in present and row is not None and not row.deleting:
                    db.delete(row)
                    db.delete(link)
                    result.vanished.append(row.tag)
    return result


# --- pins, forks, deletion claims ---------------------------------------------------------------


def set_pinned(catalog: Catalog, snapshot_id: int, pinned: bool) -> bool:
    """Pin or unpin; False if a deletion has already claimed the snapshot."""
    with catalog.session() as db:
        result = db.execute(
            update(SnapshotRecord)
            .where(col(SnapshotRecord.id) == snapshot_id, col(SnapshotRecord.deleting).is_(False))
            .values(pinned=pinned)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


def protect_for_fork(db: Session, snapshot_id: int) -> bool:
    """Mark a snapshot as forked from (in the caller's transaction); False if a deletion has
    already claimed it. One conditional UPDATE on the row, so it and :func:`claim_deletion`
    can never both win, on SQLite or PostgreSQL."""
    result = db.execute(
        update(SnapshotRecord)
        .where(col(SnapshotRecord.id) == snapshot_id, col(SnapshotRecord.deleting).is_(False))
        .values(forked_from=True)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def claim_deletion(catalog: Catalog, snapshot_id: int) -> bool:
    """Take the right to delete a snapshot: only one process wins, and never for a pinned
    snapshot or one a session was forked from (checked in the same UPDATE)."""
    with catalog.session() as db:
        result = db.execute(
            update(SnapshotRecord)
            .where(
                col(SnapshotRecord.id) == snapshot_id,
                col(SnapshotRecord.deleting).is_(False),
                col(SnapshotRecord.pinned).is_(False),
                col(SnapshotRecord.forked_from).is_(False),
            )
            .values(deleting=True)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


def release_claim(catalog: Catalog, snapshot_id: int) -> None:
    with catalog.session() as db:
        db.execute(
            update(SnapshotRecord)
            .where(col(SnapshotRecord.id) == snapshot_id)
            .values(deleting=False)
        )


def drop_snapshot_row(catalog: Catalog, snapshot_id: int) -> None:
    with catalog.session() as db:
        db.execute(delete(SnapshotRecord).where(col(SnapshotRecord.id) == snapshot_id))


def claimed_rows(catalog: Catalog) -> list[SnapshotRecord]:
    with catalog.session() as db:
        return list(
            db.exec(select(SnapshotRecord).where(col(SnapshotRecord.deleting).is_(True))).all()
        )


# --- lineage ----------------------------------------------------------------------------------


def lineage_of(catalog: Catalog, session_id: int) -> LineageRecord | None:
    with catalog.session() as db:
        return db.get(LineageRecord, session_id)


def children_of(catalog: Catalog, session_id: int) -> list[tuple[str, str]]:
    """(child session name, parent tag) of the sessions forked from ``session_id``."""
    with catalog.session() as db:
        rows = db.exec(
            select(SessionRecord.name, LineageRecord.parent_tag)
            .join(SessionRecord, col(SessionRecord.id) == col(LineageRecord.child_session_id))
            .where(LineageRecord.parent_session_id == session_id)
            .order_by(col(SessionRecord.id))
        ).all()
    return [(name, tag) for name, tag in rows]


def all_lineage(catalog: Catalog) -> list[LineageRecord]:
    with catalog.session() as db:
        return list(db.exec(select(LineageRecord)).all())


# --- job runs ---------------------------------------------------------------------------------


def _runs_from_events(events: list[EventRecord]) -> dict[tuple[str, int], dict[str, Any]]:
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for event in events:
        try:
            data = json.loads(event.data_json or "{}")
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        if event.kind == "started":
            restart = data.get("restart_count")
            restart = restart if isinstance(restart, int) and not isinstance(restart, bool) else 0
            line = data.get("metrics_line")
            step = data.get("resume_step")
            current = runs.setdefault((event.job_id or "", restart), {})
            current.update(
                started_at=event.at,
                host=str(data.get("host"))[:200] if data.get("host") else None,
                first_line=line if isinstance(line, int) and not isinstance(line, bool) else 0,
                resume_tag=str(data["resume_tag"])[:128] if data.get("resume_tag") else None,
                resume_step=step if isinstance(step, int) and not isinstance(step, bool) else None,
            )
        elif current is not None and event.kind == "ended":
            code = data.get("exit_code")
            current["ended_at"] = event.at
            current["exit_code"] = code if isinstance(code, int) else None
            current["outcome"] = "stopped for requeue" if data.get("requeue") else "ended"
        elif current is not None and event.kind == "requeued":
            current["outcome"] = "requeued"
        elif current is not None and event.kind == "requeue_failed":
            current["outcome"] = "requeue failed"
    return runs


def _first_step(db: Session, session_id: int, first_line: int) -> int | None:
    return db.exec(
        select(MetricPoint.step)
        .where(
            MetricPoint.session_id == session_id,
            col(MetricPoint.line) >= first_line,
            col(MetricPoint.step).is_not(None),
        )
        .order_by(col(MetricPoint.line))
        .limit(1)
    ).first()


def _threshold(run: JobRunRecord) -> int | None:
    if run.first_line <= 0:
        return None
    candidates = [run.first_step] if run.first_step is not None else []
    if run.resume_step is not None:
        candidates.append(run.resume_step + 1)
    return min(candidates) if candidates else None


def refresh_job_runs(catalog: Catalog, session_ids: Sequence[int]) -> None:
    """Derive the job runs of ``session_ids`` from their events (idempotent: a crash at any
    point is repaired by the next call) and settle which metric points later runs redid."""
    if not session_ids:
        return
    with catalog.session() as db:
        events = db.exec(
            select(EventRecord)
            .where(
                col(EventRecord.session_id).in_(list(session_ids)),
                col(EventRecord.kind).in_(RUN_EVENTS),
            )
            .order_by(col(EventRecord.id))
        ).all()
        by_session: dict[int, list[EventRecord]] = {}
        for event in events:
            by_session.setdefault(event.session_id, []).append(event)
        existing = {
            (row.session_id, row.job_id, row.restart_count): row
            for row in db.exec(
                select(JobRunRecord).where(col(JobRunRecord.session_id).in_(list(session_ids)))
            ).all()
        }
        fresh: list[JobRunRecord] = []
        for session_id in session_ids:
            for (job_id, restart), data in _runs_from_events(
                by_session.get(session_id, [])
            ).items():
                row = existing.get((session_id, job_id, restart))
                if row is None:
                    row = JobRunRecord(session_id=session_id, job_id=job_id, restart_count=restart)
                    fresh.append(row)
                for key, value in data.items():
                    setattr(row, key, value)
        for row in [*existing.values(), *fresh]:
            if row.first_step is None and row.first_line > 0:
                row.first_step = _first_step(db, row.session_id, row.first_line)
            row.supersede_from_step = _threshold(row)
        for row in existing.values():
            db.add(row)  # the ORM writes only the rows whose values changed
        if fresh:  # new runs (a sweep's thousand first starts): one executemany, no ORM rows
            db.connection().execute(
                insert(JobRunRecord.__table__),  # type: ignore[attr-defined]
                [row.model_dump(exclude={"id"}) for row in fresh],
            )


def unresolved_run_sessions(catalog: Catalog, session_ids: Sequence[int]) -> list[int]:
    """Sessions whose latest run has not reported its first step yet."""
    if not session_ids:
        return []
    with catalog.session() as db:
        rows = db.exec(
            select(JobRunRecord.session_id)
            .where(
                col(JobRunRecord.session_id).in_(list(session_ids)),
                col(JobRunRecord.first_step).is_(None),
                col(JobRunRecord.first_line) > 0,
            )
            .distinct()
        ).all()
    return sorted(rows)


def job_runs_of(catalog: Catalog, session_ids: Sequence[int]) -> dict[int, list[JobRunRecord]]:
    found: dict[int, list[JobRunRecord]] = {session_id: [] for session_id in session_ids}
    if not session_ids:
        return found
    with catalog.session() as db:
        rows = db.exec(
            select(JobRunRecord)
            .where(col(JobRunRecord.session_id).in_(list(session_ids)))
            .order_by(col(JobRunRecord.started_at), col(JobRunRecord.id))
        ).all()
    for row in rows:
        found[row.session_id].append(row)
    return found


def requeue_counts(catalog: Catalog, session_ids: Sequence[int]) -> dict[int, int]:
    """How often each session's job was requeued, in one query: the highest restart count a
    run started with, or the number of runs that ended in a requeue, whichever is larger (a
    requeue counts from the moment the wrapper asked for it, through Slurm's hold, not only
    once the next run starts)."""
    if not session_ids:
        return {}
    requeued = func.sum(case((col(JobRunRecord.outcome) == "requeued", 1), else_=0))
    with catalog.session() as db:
        rows = db.exec(
            select(JobRunRecord.session_id, func.max(JobRunRecord.restart_count), requeued)
            .where(col(JobRunRecord.session_id).in_(list(session_ids)))
            .group_by(col(JobRunRecord.session_id))
        ).all()
    return {
        session_id: max(int(restarts or 0), int(ends or 0)) for session_id, restarts, ends in rows
    }
