"""The shared poll floor: at most one Slurm query per cluster and user per floor, across
processes. Each user's sync asks only about that user's sessions, so the floor is per user:
bob's sync never makes alice's wait (the catalog user is ``catalog.user``)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import ClusterPoll


def claim_poll(catalog: Catalog, cluster: str, now: float, floor: float) -> bool:
    """Take the right to query ``cluster`` now; False if anyone did within ``floor`` seconds.

    A compare-and-set in one UPDATE, so two processes (CLI, TUI, cron) never both win.
    """
    key = (cluster, catalog.user)
    with Session(catalog.engine) as db:
        if db.get(ClusterPoll, key) is None:
            db.add(ClusterPoll(cluster=cluster, user=catalog.user, last_query_at=0.0))
            try:
                db.commit()
            except IntegrityError:
                db.rollback()  # another process created it first: fine
    with catalog.session() as db:
        result = db.execute(
            update(ClusterPoll)
            .where(
                col(ClusterPoll.cluster) == cluster,
                col(ClusterPoll.user) == catalog.user,
                col(ClusterPoll.last_query_at) <= now - floor,
            )
            .values(last_query_at=now, queries=ClusterPoll.queries + 1)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


def record_poll_result(catalog: Catalog, cluster: str, error: str | None) -> None:
    with catalog.session() as db:
        row = db.get(ClusterPoll, (cluster, catalog.user))
        if row is None:
            return
        row.last_ok = error is None
        row.last_error = error
        db.add(row)


def poll_status(catalog: Catalog) -> dict[str, ClusterPoll]:
    """How the caller's last query of each cluster went."""
    with catalog.session() as db:
        rows = db.exec(select(ClusterPoll).where(ClusterPoll.user == catalog.user)).all()
        return {row.cluster: row for row in rows}
