"""The shared poll floor: at most one Slurm query per cluster and user per floor, across
processes. Each user's sync asks only about that user's sessions, so the floor is per user:
bob's sync never makes alice's wait (the catalog user is ``catalog.user``)."""

from __future__ import annotations

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import ClusterPoll


def claim_poll(catalog: Catalog, cluster: str, now: float, floor: float) -> bool:
    """Take the right to query ``cluster`` now; False if anyone did within ``floor`` seconds.

    A compare-and-set in one UPDATE, so two processes (CLI, TUI, cron) never both win.
    """
    if _take(catalog, cluster, now, floor):
        return True
    with Session(catalog.engine) as db:
        if db.get(ClusterPoll, (cluster, catalog.user)) is not None:
            return False  # someone asked within the floor
        db.add(ClusterPoll(cluster=cluster, user=catalog.user, last_query_at=0.0))
        try:
            db.commit()
        except IntegrityError:
            db.rollback()  # another process created it first: fine
    return _take(catalog, cluster, now, floor)


def _take(catalog: Catalog, cluster: str, now: float, floor: float) -> bool:
    """The compare-and-set itself (the row must exist; usually it does: one statement)."""
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
    """How the query went (one UPDATE, which writes nothing when that did not change)."""
    ok = error is None
    with catalog.session() as db:
        db.execute(
            update(ClusterPoll)
            .where(
                col(ClusterPoll.cluster) == cluster,
                col(ClusterPoll.user) == catalog.user,
                or_(
                    col(ClusterPoll.last_ok).is_distinct_from(ok),
                    col(ClusterPoll.last_error).is_distinct_from(error),
                ),
            )
            .values(last_ok=ok, last_error=error)
        )


def poll_status(catalog: Catalog) -> dict[str, ClusterPoll]:
    """How the caller's last query of each cluster went."""
    with catalog.session() as db:
        rows = db.exec(select(ClusterPoll).where(ClusterPoll.user == catalog.user)).all()
        return {row.cluster: row for row in rows}
