"""Session rows: reserve a number, record submission, read, list, delete; and session names.

A session is ``project/N`` to its owner, numbered per owner and project. Where the catalog
holds other users' sessions it is shown as ``owner/project/N`` (NSML's own form), and
``project/N`` given on a command line means the caller's own (else the one other user's
session of that name; several: ambiguous, name the owner).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from nsml_hpc.catalog.datasets import link_session_rows
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import (
    CatalogMeta,
    EventRecord,
    GpuUsage,
    JobRecordRow,
    MetricPoint,
    MetricSource,
    RetiredNumber,
    ScrapeCursor,
    SessionRecord,
    StateChange,
)
from nsml_hpc.catalog.names import full_name as full_name
from nsml_hpc.catalog.names import parse_session_ref as parse_session_ref
from nsml_hpc.catalog.names import session_name as session_name
from nsml_hpc.errors import CatalogError, NotFoundError, SpecError
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.job.text import printable
from nsml_hpc.slurm.states import TERMINAL_STATES, SessionState, is_live

RESERVE_ATTEMPTS = 50


def split_session_name(name: str) -> tuple[str, int]:
    ref = parse_session_ref(name)
    return ref.project, ref.number


def catalog_users(catalog: Catalog) -> list[str]:
    """Everyone who owns a session in the catalog, sorted."""
    with catalog.session() as db:
        rows = db.exec(
            select(SessionRecord.owner)
            .where(SessionRecord.state != SessionState.PREPARING)
            .distinct()
        ).all()
    return sorted(str(row) for row in rows)


def holds_other_users(catalog: Catalog) -> bool:
    """True when the catalog holds sessions of someone other than the caller: then names
    are shown with their owner."""
    with catalog.session() as db:
        row = db.exec(
            select(SessionRecord.id)
            .where(
                SessionRecord.owner != catalog.user, SessionRecord.state != SessionState.PREPARING
            )
            .limit(1)
        ).first()
    return row is not None


SessionNamer = Callable[[SessionRecord], str]


def session_namer(catalog: Catalog) -> SessionNamer:
    """How sessions are shown in this catalog: ``project/N`` while it holds the caller's
    sessions only, ``owner/project/N`` once it holds anyone else's."""
    return full_name if holds_other_users(catalog) else (lambda record: record.name)


def check_user_exists(catalog: Catalog, user: str) -> str:
    """``user`` if they own sessions here; else NotFoundError naming those who do."""
    users = catalog_users(catalog)
    if user not in users:
        known = ", ".join(users) or "none yet"
        raise NotFoundError(f"no user {printable(user)!r} has sessions in this catalog ({known})")
    return user


def _legacy_retired_key(owner: str, project: str) -> str:
    """Where catalogs before revision 0006 kept a retired number: a catalog_meta key (a
    digest where the names would not fit its 64 characters). Read, never written."""
    key = f"retired:{owner}/{project}"
    if len(key) <= 64:
        return key
    return "retired#" + hashlib.sha256(f"{owner}/{project}".encode()).hexdigest()[:40]


def _highest_number(db: Session, project: str, owner: str) -> int:
    """The highest number ``owner``'s ``project`` has used: its sessions' and those of
    removed ones, so ``rm`` (with or without ``--purge``) never frees a name."""
    highest = db.exec(
        select(func.max(SessionRecord.number)).where(
            SessionRecord.project == project, SessionRecord.owner == owner
        )
    ).one()
    retired = db.get(RetiredNumber, (owner, project))
    legacy = db.get(CatalogMeta, _legacy_retired_key(owner, project))
    return max(
        highest or 0,
        retired.number if retired is not None else 0,
        int(legacy.value) if legacy is not None else 0,
    )


def next_number(catalog: Catalog, project: str) -> int:
    """The number the caller's next session of ``project`` gets (before any run directory
    check)."""
    with catalog.session() as db:
        return _highest_number(db, project, catalog.user) + 1


@dataclass(frozen=True)
class Reserved:
    """A PREPARING session row just reserved: what a submit needs of it."""

    id: int
    name: str
    number: int
    run_dir: str


def reserve_session(
    catalog: Catalog,
    *,
    spec: SessionSpec,
    user: str,
    run_dir_for: Callable[[int], str],
    is_free: Callable[[int], bool],
    now: float,
) -> SessionRecord:
    """Insert a PREPARING row, owned by ``catalog.user``, with the owner's next free number
    of ``spec.project``.

    The number is unique per owner and project (a constraint, retried on conflict) and its
    run directory must not exist yet (``is_free``), so two submitters never share a folder.
    """
    (reserved,) = reserve_sessions(
        catalog, specs=[spec], user=user, run_dir_for=run_dir_for, is_free=is_free, now=now
    )
    with Session(catalog.engine, expire_on_commit=False) as db:
        record = db.get(SessionRecord, reserved.id)
    if record is None:
        raise NotFoundError(f"session {reserved.name} vanished right after it was reserved")
    return record


def reserve_sessions(
    catalog: Catalog,
    *,
    specs: Sequence[SessionSpec],
    user: str,
    run_dir_for: Callable[[int], str],
    is_free: Callable[[int], bool],
    now: float,
    spec_jsons: Sequence[str] | None = None,
) -> list[Reserved]:
    """:func:`reserve_session` for many specs of ONE project in one transaction (a sweep):
    consecutive free numbers, all rows or none, in one multi-row INSERT (no ORM object per
    row). ``spec_jsons`` (the specs' ``to_dict`` as sorted JSON, in order) saves a sweep
    re-encoding a thousand near-identical specs."""
    if not specs:
        return []
    project = specs[0].project
    if any(spec.project != project for spec in specs):
        raise SpecError("sessions reserved together must share one project")
    if spec_jsons is None:
        spec_jsons = [json.dumps(spec.to_dict(), sort_keys=True) for spec in specs]
    owner = catalog.user
    for _ in range(RESERVE_ATTEMPTS):
        with Session(catalog.engine, expire_on_commit=False) as db:
            number = _highest_number(db, project, owner)
            numbers: list[int] = []
            rows: list[dict[str, object]] = []
            for spec, spec_json in zip(specs, spec_jsons, strict=True):
                number += 1
                while not is_free(number):
                    number += 1
                numbers.append(number)
                rows.append(
                    {
                        "name": session_name(project, number),
                        "project": project,
                        "number": number,
                        "user": user,
                        "owner": owner,
                        "cluster": spec.cluster,
                        "state": SessionState.PREPARING,
                        "run_dir": run_dir_for(number),
                        "spec_json": spec_json,
                        "hyperparameters_json": json.dumps(spec.hyperparameters, sort_keys=True),
                        "memo": spec.memo,
                        # the job's GPUs, all nodes (what sync reads back from sacct)
                        "gpus": spec.resources.gpus * spec.resources.nodes,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            try:
                db.execute(insert(SessionRecord), rows)
                ids = dict(
                    db.execute(
                        select(col(SessionRecord.number), col(SessionRecord.id)).where(
                            SessionRecord.owner == owner,
                            SessionRecord.project == project,
                            col(SessionRecord.number) >= numbers[0],
                            col(SessionRecord.number) <= numbers[-1],
                        )
                    ).all()
                )
                link_session_rows(
                    db, [(ids[n], spec) for n, spec in zip(numbers, specs, strict=True)]
                )
                db.commit()
            except IntegrityError:
                db.rollback()
                continue
            return [
                Reserved(
                    id=ids[n],
                    name=str(row["name"]),
                    number=n,
                    run_dir=str(row["run_dir"]),
                )
                for n, row in zip(numbers, rows, strict=True)
            ]
    raise CatalogError(f"could not reserve a session number in project {project!r}")


def mark_all_submitted(
    catalog: Catalog, job_ids: dict[int, str], *, cluster: str, now: float
) -> None:
    """:func:`mark_submitted` for many sessions in one transaction and three statements."""
    if not job_ids:
        return
    with catalog.session() as db:
        updated = db.execute(
            update(SessionRecord)
            .where(col(SessionRecord.id).in_(list(job_ids)))
            .values(state=SessionState.SUBMITTED, submitted_at=now, updated_at=now)
        )
        if updated.rowcount != len(job_ids):  # type: ignore[attr-defined]
            found = db.exec(
                select(col(SessionRecord.id)).where(col(SessionRecord.id).in_(list(job_ids)))
            ).all()
            missing = sorted(set(job_ids) - set(found))
            raise NotFoundError(f"session ids {missing} vanished while submitting")
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
    _delete_many(db, [session_id])


def _delete_many(db: Session, session_ids: Sequence[int]) -> None:
    for table in (
        MetricPoint,
        MetricSource,
        GpuUsage,
        EventRecord,
        ScrapeCursor,
        StateChange,
        JobRecordRow,
    ):
        db.execute(delete(table).where(col(table.session_id).in_(session_ids)))
    db.execute(delete(SessionRecord).where(col(SessionRecord.id).in_(session_ids)))


def discard_sessions(catalog: Catalog, session_ids: Sequence[int]) -> None:
    """Remove every row of many sessions in one transaction (a sweep whose submit failed:
    eight statements, not eight per session)."""
    if session_ids:
        with catalog.session() as db:
            _delete_many(db, list(session_ids))


def discard_session(catalog: Catalog, session_id: int, *, retire: bool = False) -> None:
    """Remove every row of a session (a failed submission, or ``rm``). With ``retire``
    (``rm``), its number is remembered so that no later session of its project reuses it."""
    with catalog.session() as db:
        if retire:
            record = db.get(SessionRecord, session_id)
            if record is not None:
                retired = db.get(RetiredNumber, (record.owner, record.project))
                if retired is None:
                    db.add(
                        RetiredNumber(
                            owner=record.owner, project=record.project, number=record.number
                        )
                    )
                elif retired.number < record.number:
                    retired.number = record.number
                    db.add(retired)
        _delete_rows(db, session_id)


def get_session(catalog: Catalog, name: str) -> SessionRecord:
    """The session ``name`` names (see the module doc); NotFoundError, or SpecError when
    ``project/N`` is ambiguous between other users."""
    ref = parse_session_ref(name)
    query = select(SessionRecord).where(
        SessionRecord.project == ref.project,
        SessionRecord.number == ref.number,
        SessionRecord.state != SessionState.PREPARING,
    )
    if ref.owner is not None:
        query = query.where(SessionRecord.owner == ref.owner)
    with catalog.session() as db:
        rows = list(db.exec(query.order_by(col(SessionRecord.owner))).all())
    mine = [row for row in rows if row.owner == catalog.user]
    if mine:
        return mine[0]
    if len(rows) == 1:
        return rows[0]
    if rows:
        shown = ", ".join(full_name(row) for row in rows)
        raise SpecError(
            f"{printable(name)} is ambiguous: you have none, and {shown} exist; "
            "name the owner (USER/PROJECT/N)"
        )
    raise NotFoundError(
        f"no session {printable(name)!r} in the catalog{_suggestion(catalog, name)}"
    )


SUGGEST_LIMIT = 20_000  # names read to suggest from, newest first (only after a miss)


def _named(owner: str, name: str, me: str) -> str:
    """A session's name as its reader types it: ``project/N`` for their own,
    ``owner/project/N`` for another user's."""
    return name if owner == me else f"{owner}/{name}"


def _suggestion(catalog: Catalog, name: str) -> str:
    """`` (did you mean 'mnist/3'?)`` for a session name that is not in the catalog."""
    from nsml_hpc.suggest import did_you_mean

    with catalog.session() as db:
        rows = db.exec(
            select(SessionRecord.owner, SessionRecord.name)
            .where(SessionRecord.state != SessionState.PREPARING)
            .order_by(col(SessionRecord.id).desc())
            .limit(SUGGEST_LIMIT)
        ).all()
    return did_you_mean(name, [_named(owner, short, catalog.user) for owner, short in rows])


def session_names(catalog: Catalog, prefix: str = "", limit: int = 1000) -> list[str]:
    """Names of submitted sessions starting with ``prefix``, newest first (completion): the
    caller's as ``project/N``, other users' as ``owner/project/N``."""
    query = select(SessionRecord.owner, SessionRecord.name).where(
        SessionRecord.state != SessionState.PREPARING
    )
    if prefix:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(
            col(SessionRecord.name).like(f"{escaped}%", escape="\\")
            | (col(SessionRecord.owner) + "/" + col(SessionRecord.name)).like(
                f"{escaped}%", escape="\\"
            )
        )
    with catalog.session() as db:
        rows = db.exec(query.order_by(col(SessionRecord.id).desc()).limit(limit)).all()
    names = [_named(owner, short, catalog.user) for owner, short in rows]
    return [name for name in names if name.startswith(prefix)]


def list_sessions(
    catalog: Catalog,
    *,
    project: str | None = None,
    cluster: str | None = None,
    limit: int | None = None,
    owner: str | None = None,
) -> list[SessionRecord]:
    """Submitted sessions (of ``owner`` only, when given), newest first."""
    query = select(SessionRecord).where(SessionRecord.state != SessionState.PREPARING)
    if owner is not None:
        query = query.where(SessionRecord.owner == owner)
    if project is not None:
        query = query.where(SessionRecord.project == project)
    if cluster is not None:
        query = query.where(SessionRecord.cluster == cluster)
    query = query.order_by(col(SessionRecord.created_at).desc(), col(SessionRecord.id).desc())
    if limit is not None:
        query = query.limit(limit)
    with catalog.session() as db:
        return list(db.exec(query).all())


def update_memo(catalog: Catalog, session_id: int, memo: str, *, now: float) -> None:
    """Replace the memo of session ``session_id``."""
    with catalog.session() as db:
        record = db.get(SessionRecord, session_id)
        if record is None or record.state == SessionState.PREPARING:
            raise NotFoundError(f"session id {session_id} is not in the catalog")
        record.memo = memo
        record.updated_at = now
        db.add(record)


def live_sessions(catalog: Catalog, now: float, *, owner: str | None = None) -> list[SessionRecord]:
    """Sessions sync still has to ask Slurm about (``owner``'s only, when given)."""
    query = select(SessionRecord).where(
        col(SessionRecord.state).not_in([SessionState.PREPARING, *TERMINAL_STATES])
    )
    if owner is not None:
        query = query.where(SessionRecord.owner == owner)
    with catalog.session() as db:
        rows = db.exec(query).all()
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
    """The caller's PREPARING rows left by a submit that crashed before it could clean up
    (another user's are theirs to finish)."""
    with catalog.session() as db:
        return list(
            db.exec(
                select(SessionRecord).where(
                    SessionRecord.state == SessionState.PREPARING,
                    SessionRecord.created_at < older_than,
                    SessionRecord.owner == catalog.user,
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
                SessionRecord.project == project,
                SessionRecord.number == first,
                SessionRecord.owner == catalog.user,
            )
        ).first()
        members: list[SessionRecord] = []
        if head is not None:
            members = list(
                db.exec(
                    select(SessionRecord)
                    .where(
                        SessionRecord.project == project,
                        SessionRecord.owner == catalog.user,
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
        .where(
            col(JobRecordRow.job_id).like("%\\_%", escape="\\"),
            SessionRecord.owner == catalog.user,
        )
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
