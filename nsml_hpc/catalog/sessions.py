"""Session rows: reserve a number, record submission, read, list, delete."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from sqlalchemy import delete, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import (
    EventRecord,
    GpuUsage,
    JobRecordRow,
    MetricPoint,
    MetricSource,
    ScrapeCursor,
    SessionRecord,
    StateChange,
)
from nsml_hpc.errors import CatalogError, NotFoundError, SpecError
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.slurm.states import TERMINAL_STATES, SessionState, is_live

RESERVE_ATTEMPTS = 50


def session_name(project: str, number: int) -> str:
    return f"{project}/{number}"


def split_session_name(name: str) -> tuple[str, int]:
    project, sep, number = name.rpartition("/")
    if not sep or not project or not number.isdigit():
        raise SpecError(f"a session is named PROJECT/NUMBER (e.g. mnist/3), got {name!r}")
    return project, int(number)


def reserve_session(
    catalog: Catalog,
    *,
    spec: SessionSpec,
    user: str,
    run_dir_for: Callable[[int], str],
    is_free: Callable[[int], bool],
    now: float,
) -> SessionRecord:
    """Insert a PREPARING row with the next free number of ``spec.project``.

    The number is unique in the catalog (a constraint, retried on conflict) and its run
    directory must not exist yet (``is_free``), so two submitters never share a folder.
    """
    (record,) = reserve_sessions(
        catalog, specs=[spec], user=user, run_dir_for=run_dir_for, is_free=is_free, now=now
    )
    return record


def reserve_sessions(
    catalog: Catalog,
    *,
    specs: Sequence[SessionSpec],
    user: str,
    run_dir_for: Callable[[int], str],
    is_free: Callable[[int], bool],
    now: float,
) -> list[SessionRecord]:
    """:func:`reserve_session` for many specs of ONE project in one transaction (a sweep):
    consecutive free numbers, all rows or none."""
    if not specs:
        return []
    project = specs[0].project
    if any(spec.project != project for spec in specs):
        raise SpecError("sessions reserved together must share one project")
    for _ in range(RESERVE_ATTEMPTS):
        with Session(catalog.engine, expire_on_commit=False) as db:
            highest = db.exec(
                select(func.max(SessionRecord.number)).where(SessionRecord.project == project)
            ).one()
            number = highest or 0
            records: list[SessionRecord] = []
            for spec in specs:
                number += 1
                while not is_free(number):
                    number += 1
                records.append(
                    SessionRecord(
                        name=session_name(project, number),
                        project=project,
                        number=number,
                        user=user,
                        cluster=spec.cluster,
                        state=SessionState.PREPARING,
                        run_dir=run_dir_for(number),
                        spec_json=json.dumps(spec.to_dict(), sort_keys=True),
                        hyperparameters_json=json.dumps(spec.hyperparameters, sort_keys=True),
                        memo=spec.memo,
                        # the job's GPUs, all nodes (what sync reads back from sacct)
                        gpus=spec.resources.gpus * spec.resources.nodes,
                        created_at=now,
                        updated_at=now,
                    )
                )
            db.add_all(records)
            try:
                db.commit()
            except IntegrityError:
                db.rollback()
                continue
            return records
    raise CatalogError(f"could not reserve a session number in project {project!r}")


def mark_all_submitted(
    catalog: Catalog, job_ids: dict[int, str], *, cluster: str, now: float
) -> None:
    """:func:`mark_submitted` for many sessions in one transaction and three statements."""
    if not job_ids:
        return
    with catalog.session() as db:
        found = db.exec(
            select(col(SessionRecord.id)).where(col(SessionRecord.id).in_(list(job_ids)))
        ).all()
        missing = set(job_ids) - set(found)
        if missing:
            raise NotFoundError(f"session ids {sorted(missing)} vanished while submitting")
        db.execute(
            update(SessionRecord)
            .where(col(SessionRecord.id).in_(list(job_ids)))
            .values(state=SessionState.SUBMITTED, submitted_at=now, updated_at=now)
        )
        db.execute(
            insert(JobRecordRow),
            [
                {
                    "session_id": session_id,
                    "cluster": cluster,
                    "job_id": job_id,
                    "state": SessionState.SUBMITTED,
                    "submitted_at": now,
                }
                for session_id, job_id in job_ids.items()
            ],
        )
        db.execute(
            insert(StateChange),
            [
                {
                    "session_id": session_id,
                    "at": now,
                    "state": SessionState.SUBMITTED,
                    "job_id": job_id,
                }
                for session_id, job_id in job_ids.items()
            ],
        )


def mark_submitted(
    catalog: Catalog, session_id: int, *, job_id: str, cluster: str, now: float
) -> None:
    with catalog.session() as db:
        record = db.get(SessionRecord, session_id)
        if record is None:
            raise NotFoundError(f"session id {session_id} vanished while submitting")
        record.state = SessionState.SUBMITTED
        record.submitted_at = now
        record.updated_at = now
        db.add(record)
        db.add(
            JobRecordRow(
                session_id=session_id,
                cluster=cluster,
                job_id=job_id,
                state=SessionState.SUBMITTED,
                submitted_at=now,
            )
        )
        db.add(
            StateChange(session_id=session_id, at=now, state=SessionState.SUBMITTED, job_id=job_id)
        )


def _delete_rows(db: Session, session_id: int) -> None:
    for table in (
        MetricPoint,
        MetricSource,
        GpuUsage,
        EventRecord,
        ScrapeCursor,
        StateChange,
        JobRecordRow,
    ):
        db.execute(delete(table).where(col(table.session_id) == session_id))
    db.execute(delete(SessionRecord).where(col(SessionRecord.id) == session_id))


def discard_session(catalog: Catalog, session_id: int) -> None:
    """Remove every row of a session (a failed submission, or ``rm``)."""
    with catalog.session() as db:
        _delete_rows(db, session_id)


def get_session(catalog: Catalog, name: str) -> SessionRecord:
    project, number = split_session_name(name)
    with catalog.session() as db:
        record = db.exec(
            select(SessionRecord).where(
                SessionRecord.project == project, SessionRecord.number == number
            )
        ).first()
    if record is None or record.state == SessionState.PREPARING:
        raise NotFoundError(f"no session {name!r} in the catalog")
    return record


def list_sessions(
    catalog: Catalog,
    *,
    project: str | None = None,
    cluster: str | None = None,
    limit: int | None = None,
) -> list[SessionRecord]:
    """Submitted sessions, newest first."""
    query = select(SessionRecord).where(SessionRecord.state != SessionState.PREPARING)
    if project is not None:
        query = query.where(SessionRecord.project == project)
    if cluster is not None:
        query = query.where(SessionRecord.cluster == cluster)
    query = query.order_by(col(SessionRecord.created_at).desc(), col(SessionRecord.id).desc())
    if limit is not None:
        query = query.limit(limit)
    with catalog.session() as db:
        return list(db.exec(query).all())


def update_memo(catalog: Catalog, name: str, memo: str, *, now: float) -> None:
    """Replace the memo of session ``name``."""
    project, number = split_session_name(name)
    with catalog.session() as db:
        record = db.exec(
            select(SessionRecord).where(
                SessionRecord.project == project, SessionRecord.number == number
            )
        ).first()
        if record is None or record.state == SessionState.PREPARING:
            raise NotFoundError(f"no session {name!r} in the catalog")
        record.memo = memo
        record.updated_at = now
        db.add(record)


def live_sessions(catalog: Catalog, now: float) -> list[SessionRecord]:
    """Sessions sync still has to ask Slurm about."""
    with catalog.session() as db:
        rows = db.exec(
            select(SessionRecord).where(
                col(SessionRecord.state).not_in([SessionState.PREPARING, *TERMINAL_STATES])
            )
        ).all()
    return [row for row in rows if is_live(row.state, row.ended_at, now)]


def jobs_of(catalog: Catalog, session_ids: Sequence[int]) -> dict[int, list[JobRecordRow]]:
    """Job-id history per session, oldest first, for many sessions in one query."""
    found: dict[int, list[JobRecordRow]] = {session_id: [] for session_id in session_ids}
    if not session_ids:
        return found
    with catalog.session() as db:
        rows = db.exec(
            select(JobRecordRow)
            .where(col(JobRecordRow.session_id).in_(list(session_ids)))
            .order_by(col(JobRecordRow.id))
        ).all()
    for row in rows:
        found[row.session_id].append(row)
    return found


def state_history(catalog: Catalog, session_id: int) -> list[StateChange]:
    with catalog.session() as db:
        return list(
            db.exec(
                select(StateChange)
                .where(StateChange.session_id == session_id)
                .order_by(col(StateChange.at), col(StateChange.id))
            ).all()
        )


def events_of(catalog: Catalog, session_id: int) -> list[EventRecord]:
    with catalog.session() as db:
        return list(
            db.exec(
                select(EventRecord)
                .where(EventRecord.session_id == session_id)
                .order_by(col(EventRecord.id))
            ).all()
        )


def stale_reservations(catalog: Catalog, older_than: float) -> list[SessionRecord]:
    """PREPARING rows left by a submit that crashed before it could clean up."""
    with catalog.session() as db:
        return list(
            db.exec(
                select(SessionRecord).where(
                    SessionRecord.state == SessionState.PREPARING,
                    SessionRecord.created_at < older_than,
                )
            ).all()
        )
