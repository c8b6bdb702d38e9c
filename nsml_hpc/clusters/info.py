"""What the cluster view shows: GPUs per partition (total / allocated / idle) and the user's
queue, from ONE sinfo and ONE squeue call per floor, shared through the catalog.

``cluster_overview`` is the function the TUI's cluster screen (and a future ``nsml-hpc gpus``)
calls: if nobody asked the cluster within the poll floor it asks and stores the answer,
otherwise it returns the stored answer. A failed query keeps the last good answer and reports
the error next to it ("cluster unreachable — showing cached data").
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from nsml_hpc.catalog.cluster_models import ClusterInfoCache
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.config.identity import current_user
from nsml_hpc.context import Context
from nsml_hpc.errors import NsmlError
from nsml_hpc.slurm.sinfo import NodeGpus, PartitionGpus, partition_summary
from nsml_hpc.slurm.user_queue import QueueJob


@dataclass(frozen=True)
class ClusterOverview:
    cluster: str
    user: str
    nodes: list[NodeGpus] = field(default_factory=list)
    queue: list[QueueJob] = field(default_factory=list)
    fetched_at: float | None = None  # when the data shown was fetched (None: never)
    error: str | None = None  # the last query failed: the data shown is older
    asked: bool = False  # this call ran sinfo/squeue (False: answered from the catalog)

    @property
    def partitions(self) -> list[PartitionGpus]:
        return partition_summary(self.nodes)


def _claim(catalog: Catalog, cluster: str, user: str, now: float, floor: float) -> bool:
    """Compare-and-set on ``claimed_at``, like the sync's poll floor."""
    with Session(catalog.engine) as db:
        if db.get(ClusterInfoCache, (cluster, user)) is None:
            db.add(ClusterInfoCache(cluster=cluster, user=user))
            try:
                db.commit()
            except IntegrityError:
                db.rollback()
    with catalog.session() as db:
        result = db.execute(
            update(ClusterInfoCache)
            .where(
                col(ClusterInfoCache.cluster) == cluster,
                col(ClusterInfoCache.user) == user,
                col(ClusterInfoCache.claimed_at) <= now - floor,
            )
            .values(claimed_at=now)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


def _decode(cluster: str, user: str, row: ClusterInfoCache | None, asked: bool) -> ClusterOverview:
    if row is None:
        return ClusterOverview(cluster=cluster, user=user, asked=asked)
    payload: dict[str, Any] = json.loads(row.payload_json or "{}")
    nodes = [
        NodeGpus(**{**item, "gpu_types": tuple(item.get("gpu_types", ()))})
        for item in payload.get("nodes", [])
    ]
    queue = [QueueJob(**item) for item in payload.get("queue", [])]
    stale_error = row.error if row.error_at and row.error_at >= (row.fetched_at or 0) else None
    return ClusterOverview(
        cluster=cluster,
        user=user,
        nodes=nodes,
        queue=queue,
        fetched_at=row.fetched_at,
        error=stale_error,
        asked=asked,
    )


def _cluster_user(workspace: Context, cluster: str) -> str:
    """The account the cluster knows us by: the profile's (or ~/.ssh/config's) user on a
    remote cluster, this machine's user on a local one. Building the backend connects to
    nothing."""
    try:
        return workspace.backend_for(cluster).user
    except NsmlError:
        return current_user()


def cluster_overview(
    workspace: Context,
    cluster: str = "local",
    *,
    user: str | None = None,
    now: float | None = None,
    floor: float | None = None,
) -> ClusterOverview:
    """GPUs per node/partition and ``user``'s queue on ``cluster``, at most one query per floor."""
    now = time.time() if now is None else now
    user = user or _cluster_user(workspace, cluster)
    floor = workspace.settings.poll_floor_seconds if floor is None else floor
    catalog = workspace.catalog
    asked = _claim(catalog, cluster, user, now, floor)
    if asked:
        try:
            backend = workspace.backend_for(cluster)
            nodes = backend.cluster_gpus()
            queue = backend.user_queue(user)
        except NsmlError as exc:
            with catalog.session() as db:
                row = db.get(ClusterInfoCache, (cluster, user))
                if row is not None:
                    row.error, row.error_at = str(exc), now
                    db.add(row)
        else:
            payload = {
                "nodes": [asdict(node) for node in nodes],
                "queue": [asdict(job) for job in queue],
            }
            with catalog.session() as db:
                row = db.get(ClusterInfoCache, (cluster, user))
                if row is not None:
                    row.payload_json = json.dumps(payload, sort_keys=True)
                    row.fetched_at, row.error, row.error_at = now, None, None
                    db.add(row)
    with catalog.session() as db:
        row = db.get(ClusterInfoCache, (cluster, user))
    return _decode(cluster, user, row, asked)
