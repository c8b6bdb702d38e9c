"""What Slurm gave each job (partition, account, QoS, GPUs, time limit, nodes), read back from
the sync's one sacct call: ``show`` and ``ps`` report these, never only what was asked.

A table of its own (one row per job row), so older catalogs gain it without a migration. A
session's ``gpus`` column follows the allocation of its latest job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlmodel import Field, SQLModel, col, select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import JobRecordRow, SessionRecord


class JobAllocation(SQLModel, table=True):
    __tablename__ = "job_allocation"
    job_row_id: int = Field(foreign_key="job.id", primary_key=True, ondelete="CASCADE")
    partition: str | None = Field(default=None, max_length=200)
    account: str | None = Field(default=None, max_length=200)
    qos: str | None = Field(default=None, max_length=200)
    gpus: int | None = None
    time_limit: str | None = Field(default=None, max_length=64)
    nodes: int | None = None


@dataclass(frozen=True)
class Allocation:
    """One job's resources as Slurm reports them (None: not reported)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    gpus: int | None = None
    time_limit: str | None = None
    nodes: int | None = None

    def known(self) -> bool:
        return any(value is not None for value in self.__dict__.values())

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def _from_row(row: JobAllocation) -> Allocation:
    return Allocation(row.partition, row.account, row.qos, row.gpus, row.time_limit, row.nodes)


def allocations_of(catalog: Catalog, job_row_ids: Sequence[int]) -> dict[int, Allocation]:
    """Stored allocations by job row id, in one query."""
    if not job_row_ids:
        return {}
    with catalog.session() as db:
        rows = db.exec(
            select(JobAllocation).where(col(JobAllocation.job_row_id).in_(list(job_row_ids)))
        )
        return {row.job_row_id: _from_row(row) for row in rows}


def merged(new: Allocation, old: Allocation | None) -> Allocation:
    """``new``, keeping ``old``'s values where ``new`` reports none (a pending job's line)."""
    if old is None:
        return new
    return Allocation(
        *(
            value if value is not None else before
            for value, before in zip(new.__dict__.values(), old.__dict__.values(), strict=True)
        )
    )


def store_allocations(
    catalog: Catalog, jobs: Mapping[int, tuple[int, Allocation]], *, latest: set[int]
) -> int:
    """Store what changed, in one transaction (one read first, so a steady sync writes
    nothing). ``jobs``: job row id -> (session id, allocation); the sessions of the job rows
    in ``latest`` take the job's GPU count. Returns the number of rows written."""
    wanted = {row_id: pair for row_id, pair in jobs.items() if pair[1].known()}
    stored = allocations_of(catalog, list(wanted))
    changed: dict[int, tuple[int, Allocation]] = {}
    for row_id, (session_id, alloc) in wanted.items():
        new = merged(alloc, stored.get(row_id))
        if new != stored.get(row_id):
            changed[row_id] = (session_id, new)
    if not changed:
        return 0
    with catalog.session() as db:
        for row_id, (session_id, alloc) in changed.items():
            row = db.get(JobAllocation, row_id) or JobAllocation(job_row_id=row_id)
            row.partition, row.account, row.qos = alloc.partition, alloc.account, alloc.qos
            row.gpus, row.time_limit, row.nodes = alloc.gpus, alloc.time_limit, alloc.nodes
            db.add(row)
            if row_id in latest and alloc.gpus is not None:
                session = db.get(SessionRecord, session_id)
                if session is not None and session.gpus != alloc.gpus:
                    session.gpus = alloc.gpus
                    db.add(session)
    return len(changed)


def job_allocations(catalog: Catalog, jobs: Sequence[JobRecordRow]) -> dict[str, Allocation]:
    """Allocations by Slurm job id for ``jobs`` (one session's history)."""
    found = allocations_of(catalog, [job.id for job in jobs if job.id is not None])
    return {job.job_id: found[job.id] for job in jobs if job.id is not None and job.id in found}
