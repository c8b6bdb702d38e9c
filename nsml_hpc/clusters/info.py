"""What the cluster view shows: GPUs per partition (total / allocated / idle) and the user's
queue, from ONE sinfo and ONE squeue call, shared through the catalog.

``cluster_overview`` is the function the TUI's cluster screen calls. sinfo and squeue are Slurm
queries like the sync's sacct, so they run on the same Slurm clock
(:mod:`nsml_hpc.sync.clocks`) and spend from the same allowance:

- at most once per Slurm floor (``slurm_policy.floor_seconds``, 60 s by default) whoever asks:
  if nobody asked the cluster within it, this call asks and stores the answer, otherwise it
  returns the stored answer;
- an explicit refresh (the user pressed a key) may ask once the action floor has passed;
- both spend their two commands from the user's hourly allowance on that cluster (the
  sync's token bucket, ``queries_per_hour``). A background refresh asks only while the
  allowance also keeps :data:`SYNC_RESERVE` commands for the sessions' own sync (their states
  come first); an explicit one takes what there is: both with two commands left, sinfo alone
  with one (the queue keeps its older answer, ``queue_fetched_at``). When the allowance is
  short the stored answer is returned with how old it is (``fetched_at``) and why it was not
  renewed, with about when it can be (``held_back``).

A failed query keeps the last good answer and reports the error next to it ("cluster
unreachable — showing cached data").
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from nsml_hpc.catalog.cluster_models import ClusterInfoCache
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.config.identity import current_user
from nsml_hpc.config.site_policy import SlurmPolicy
from nsml_hpc.context import Context
from nsml_hpc.errors import NsmlError
from nsml_hpc.slurm.sinfo import NodeGpus, PartitionGpus, partition_summary
from nsml_hpc.slurm.user_queue import QueueJob
from nsml_hpc.sync.file_first import spend_commands, tokens_left

OVERVIEW_COMMANDS = 2  # one sinfo, one squeue
SYNC_RESERVE = 2.0  # what a background refresh leaves for the sync (a sacct and a squeue)


@dataclass(frozen=True)
class ClusterOverview:
    cluster: str
    user: str
    nodes: list[NodeGpus] = field(default_factory=list)
    queue: list[QueueJob] = field(default_factory=list)
    fetched_at: float | None = None  # when the data shown was fetched (None: never)
    queue_fetched_at: float | None = None  # the queue's (older when only sinfo was renewed)
    error: str | None = None  # the last query failed: the data shown is older
    asked: bool = False  # this call ran sinfo/squeue (False: answered from the catalog)
    held_back: str | None = None  # due, but the hourly allowance was short: why, and when

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


def _due(catalog: Catalog, cluster: str, user: str, now: float, floor: float) -> bool:
    """Whether the floor has passed since anyone last asked (without claiming it)."""
    with catalog.session() as db:
        row = db.get(ClusterInfoCache, (cluster, user))
    return row is None or row.claimed_at <= now - floor


def _decode(
    cluster: str,
    user: str,
    row: ClusterInfoCache | None,
    asked: bool,
    held_back: str | None = None,
) -> ClusterOverview:
    if row is None:
        return ClusterOverview(cluster=cluster, user=user, asked=asked, held_back=held_back)
    payload: dict[str, Any] = json.loads(row.payload_json or "{}")
    nodes = [
        NodeGpus(**{**item, "gpu_types": tuple(item.get("gpu_types", ()))})
        for item in payload.get("nodes", [])
    ]
    queue = [QueueJob(**item) for item in payload.get("queue", [])]
    queue_fetched_at = payload.get("queue_fetched_at", row.fetched_at)
    stale_error = row.error if row.error_at and row.error_at >= (row.fetched_at or 0) else None
    return ClusterOverview(
        cluster=cluster,
        user=user,
        nodes=nodes,
        queue=queue,
        fetched_at=row.fetched_at,
        queue_fetched_at=queue_fetched_at,
        error=stale_error,
        asked=asked,
        held_back=held_back,
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
    explicit: bool = False,
) -> ClusterOverview:
    """GPUs per node/partition and ``user``'s queue on ``cluster``: at most one sinfo + squeue
    per Slurm floor (``explicit``, a user's refresh: per action floor), within the hourly
    allowance the sync spends from too (see the module doc)."""
    now = time.time() if now is None else now
    user = user or _cluster_user(workspace, cluster)
    policy = workspace.settings.slurm_policy
    floor = policy.action_floor_seconds if explicit else policy.floor_seconds
    catalog = workspace.catalog
    owner = catalog.user  # whose allowance: the same bucket as this user's syncs
    asked, held_back, affordable = False, None, 0
    if _due(catalog, cluster, user, now, floor):
        left = tokens_left(catalog, cluster, owner, policy, now)
        need = float(OVERVIEW_COMMANDS) if explicit else OVERVIEW_COMMANDS + SYNC_RESERVE
        # A user's refresh takes what there is: sinfo alone when one command is left.
        affordable = int(left) if explicit else (OVERVIEW_COMMANDS if left >= need else 0)
        affordable = min(affordable, OVERVIEW_COMMANDS)
        if affordable < 1:
            held_back = _held_back(policy, left, need)
        else:
            asked = _claim(catalog, cluster, user, now, floor)
            if asked and affordable < OVERVIEW_COMMANDS:
                held_back = "your queue not renewed: " + _held_back(policy, left - 1, need)
    if asked:
        _ask(workspace, cluster, user, now, policy, with_queue=affordable >= OVERVIEW_COMMANDS)
    with catalog.session() as db:
        row = db.get(ClusterInfoCache, (cluster, user))
    return _decode(cluster, user, row, asked, held_back)


def _ask(
    workspace: Context,
    cluster: str,
    user: str,
    now: float,
    policy: SlurmPolicy,
    *,
    with_queue: bool,
) -> None:
    """One sinfo (and one squeue, ``with_queue``), stored; what ran is spent."""
    catalog = workspace.catalog
    commands = 0
    try:
        backend = workspace.backend_for(cluster)
        commands += 1
        nodes = backend.cluster_gpus()
        queue = None
        if with_queue:
            commands += 1
            queue = backend.user_queue(user)
    except NsmlError as exc:
        with catalog.session() as db:
            row = db.get(ClusterInfoCache, (cluster, user))
            if row is not None:
                row.error, row.error_at = str(exc), now
                db.add(row)
    else:
        with catalog.session() as db:
            row = db.get(ClusterInfoCache, (cluster, user))
            if row is not None:
                old: dict[str, Any] = json.loads(row.payload_json or "{}")
                payload = {
                    "nodes": [asdict(node) for node in nodes],
                    "queue": old.get("queue", [])
                    if queue is None
                    else [asdict(job) for job in queue],
                    "queue_fetched_at": old.get("queue_fetched_at") if queue is None else now,
                }
                row.payload_json = json.dumps(payload, sort_keys=True)
                row.fetched_at, row.error, row.error_at = now, None, None
                db.add(row)
    finally:
        if commands:
            spend_commands(catalog, cluster, catalog.user, policy, now, commands)


def _held_back(policy: SlurmPolicy, left: float, need: float) -> str:
    """Why a due query was not sent, and about when the allowance allows the next."""
    rate = policy.refill_per_second
    wait = f"; next in about {math.ceil((need - left) / rate)} s" if rate > 0 else ""
    return f"hourly Slurm allowance ({policy.queries_per_hour} commands) spent{wait}"
