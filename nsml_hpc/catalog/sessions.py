"""Session rows: reserve a number, record submission, read, list, delete."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

from sqlalchemy import delete, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import (
    CatalogMeta,
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


def _retired_key(project: str) -> str:
    """The catalog_meta key of the highest number a removed session of ``project`` had (a
    digest of the name where the name would not fit the 64-character key)."""
    key = f"retired:{project}"
    if len(key) <= 64:
        return key
    return "retired#" + hashlib.sha256(project.encode("utf-8")).hexdigest()[:40]


def _highest_number(db: Session, project: str) -> int:
    """The highest number ``project`` has used: its sessions' and those of removed ones, so
    ``rm`` (with or without ``--purge``) never frees a name for a new session."""
    highest = db.exec(
        select(func.max(SessionRecord.number)).where(SessionRecord.project == project)
    ).one()
    retired = db.get(CatalogMeta, _retired_key(project))
    return max(highest or 0, int(retired.value) if retired is not None else 0)


def next_number(catalog: Catalog, project: str) -> int:
    """The number the next session of ``project`` gets (before any run directory check)."""
    with catalog.session() as db:
        return _highest_number(db, project) + 1


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
            number = _highest_number(db, project)
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
                        gpus=spec.resources.gpus,
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


def discard_session(catalog: Catalog, session_id: int, *, retire: bool = False) -> None:
    """Remove every row of a session (a failed submission, or ``rm``). With ``retire``
    (``rm``), its number is remembered so that no later session of its project reuses it."""
    with catalog.session() as db:
        if retire:
            record = db.get(SessionRecord, session_id)
            if record is not None:
                key = _retired_key(record.project)
                retired = db.get(CatalogMeta, key)
                if retired is None:
                    db.add(CatalogMeta(key=key, value=str(record.number)))
                elif int(retired.value) < record.number:
                    retired.value = str(record.number)
                    db.add(retired)
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
        raise NotFoundError(f"no session {name!r} in the catalog{_suggestion(catalog, name)}")
    return record


SUGGEST_LIMIT = 20_000  # names read to suggest from, newest first (only after a miss)


def _suggestion(catalog: Catalog, name: str) -> str:
    """`` (did you mean 'mnist/3'?)`` for a session name that is not in the catalog."""
    from nsml_hpc.suggest import did_you_mean

    with catalog.session() as db:
        names = db.exec(
            select(SessionRecord.name)
            .where(SessionRecord.state != SessionState.PREPARING)
            .order_by(col(SessionRecord.id).desc())
            .limit(SUGGEST_LIMIT)
        ).all()
    return did_you_mean(name, names)


def session_names(catalog: Catalog, prefix: str = "", limit: int = 1000) -> list[str]:
    """Names of submitted sessions starting with ``prefix``, newest first (completion)."""
    query = select(SessionRecord.name).where(SessionRecord.state != SessionState.PREPARING)
    if prefix:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(col(SessionRecord.name).like(f"{escaped}%", escape="\\"))
    with catalog.session() as db:
        return list(db.exec(query.order_by(col(SessionRecord.id).desc()).limit(limit)).all())


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
            raise NotFoundError(f"no session {name!r} in the catalog{_suggestion(catalog, name)}")
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


def _sweep_first(project: str, text: str) -> int | None:
    word = text.removeprefix("sweep-")
    return int(word) if word.isdigit() else None


def sweep_members(catalog: Catalog, sweep: str) -> list[SessionRecord]:
    """The sessions of sweep ``PROJECT/sweep-N`` (as ``sweep`` prints it), newest first: the
    sessions a sweep reserves share its project and one creation time, and its first is
    ``PROJECT/N``. NotFoundError (with the closest sweep names) if there is no such sweep."""
    project, _, tail = sweep.rpartition("/")
    first = _sweep_first(project, tail)
    if not project or first is None:
        raise SpecError(f"a sweep is named PROJECT/sweep-N (as `sweep` prints it), got {sweep!r}")
    with catalog.session() as db:
        head = db.exec(
            select(SessionRecord).where(
                SessionRecord.project == project, SessionRecord.number == first
            )
        ).first()
        members: list[SessionRecord] = []
        if head is not None:
            members = list(
                db.exec(
                    select(SessionRecord)
                    .where(
                        SessionRecord.project == project,
                        SessionRecord.created_at == head.created_at,
                        SessionRecord.state != SessionState.PREPARING,
                    )
                    .order_by(col(SessionRecord.number).desc())
                ).all()
            )
    if (
        not members
        or min(record.number for record in members) != first
        or (len(members) < 2 and not _is_array_member(catalog, members[0]))
    ):
        raise NotFoundError(f"no sweep {sweep!r} in the catalog{_sweep_suggestion(catalog, sweep)}")
    return members


def _is_array_member(catalog: Catalog, record: SessionRecord) -> bool:
    jobs = jobs_of(catalog, [record.id or -1]).get(record.id or -1, [])
    return bool(jobs) and "_" in jobs[0].job_id


def sweep_names(catalog: Catalog, project: str | None = None) -> list[str]:
    """Names of the sweeps in the catalog (``PROJECT/sweep-N``), of ``project`` if given."""
    query = (
        select(SessionRecord.project, func.min(SessionRecord.number))
        .join(JobRecordRow, col(JobRecordRow.session_id) == col(SessionRecord.id))
        .where(col(JobRecordRow.job_id).like("%\\_%", escape="\\"))
        .group_by(col(SessionRecord.project), col(SessionRecord.created_at))
    )
    if project is not None:
        query = query.where(SessionRecord.project == project)
    with catalog.session() as db:
        rows = db.exec(query).all()
    return sorted(f"{name}/sweep-{number}" for name, number in rows)


def _sweep_suggestion(catalog: Catalog, sweep: str) -> str:
    from nsml_hpc.suggest import did_you_mean

    return did_you_mean(sweep, sweep_names(catalog))
