"""Reading and moving the shared Slurm clock (:class:`SlurmClockRecord`) of a catalog user
(``catalog.user``, whose syncs ask Slurm about their sessions); when to ask is decided above
the catalog, in :mod:`nsml_hpc.sync.clocks`."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from nsml_hpc.catalog.clock_models import SlurmClockRecord
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import ClusterPoll


def _ensure(catalog: Catalog, cluster: str, user: str) -> None:
    with Session(catalog.engine) as db:
        if db.get(SlurmClockRecord, (cluster, user)) is not None:
            return
        db.add(SlurmClockRecord(cluster=cluster, user=user))
        try:
            db.commit()
        except IntegrityError:
            db.rollback()  # another process made it first: fine


def read_clock(catalog: Catalog, cluster: str, user: str) -> tuple[float, SlurmClockRecord | None]:
    """When ``user`` last asked ``cluster`` (the shared poll record), and their clock row."""
    with catalog.session() as db:
        poll = db.get(ClusterPoll, (cluster, user))
        row = db.get(SlurmClockRecord, (cluster, user))
    return (poll.last_query_at if poll is not None else 0.0), row


def clock_row(catalog: Catalog, cluster: str, user: str) -> SlurmClockRecord | None:
    """The user's clock row alone (what spending needs: one statement)."""
    with catalog.session() as db:
        return db.get(SlurmClockRecord, (cluster, user))


def want_slurm(catalog: Catalog, clusters: Iterable[str], user: str, now: float, why: str) -> None:
    """A user acted (or files showed something only Slurm can explain): the next sync of each
    cluster asks Slurm as soon as the action floor allows, in whichever process."""
    for cluster in sorted(set(clusters)):
        _ensure(catalog, cluster, user)
        with catalog.session() as db:
            db.execute(
                update(SlurmClockRecord)
                .where(
                    col(SlurmClockRecord.cluster) == cluster,
                    col(SlurmClockRecord.user) == user,
                    col(SlurmClockRecord.wanted_at) < now,
                )
                .values(wanted_at=now, wanted_why=why[:500])
            )


def record_query(
    catalog: Catalog,
    cluster: str,
    user: str,
    *,
    commands: int,
    tokens: float,
    tokens_at: float,
    queued_at: float | None,
    exists: bool = False,
) -> None:
    """What a query spent: the bucket after it, and when squeue was last used (``exists``:
    the caller just read the user's clock row, so it need not be made first)."""
    if not exists:
        _ensure(catalog, cluster, user)
    values: dict[str, object] = {
        "tokens": tokens,
        "tokens_at": tokens_at,
        "commands": SlurmClockRecord.commands + commands,
    }
    if queued_at is not None:
        values["last_queue_at"] = queued_at
    with catalog.session() as db:
        db.execute(
            update(SlurmClockRecord)
            .where(col(SlurmClockRecord.cluster) == cluster, col(SlurmClockRecord.user) == user)
            .values(values)
        )


def note_deferred(catalog: Catalog, cluster: str, user: str) -> None:
    """The ceiling put a due query off."""
    _ensure(catalog, cluster, user)
    with catalog.session() as db:
        db.execute(
            update(SlurmClockRecord)
            .where(col(SlurmClockRecord.cluster) == cluster, col(SlurmClockRecord.user) == user)
            .values(deferred=SlurmClockRecord.deferred + 1)
        )


def clock_rows(catalog: Catalog, user: str) -> dict[str, SlurmClockRecord]:
    with catalog.session() as db:
        rows = db.exec(select(SlurmClockRecord).where(SlurmClockRecord.user == user)).all()
    return {row.cluster: row for row in rows}
