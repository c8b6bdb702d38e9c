"""What Slurm gave each job (partition, account, QoS, GPUs, time limit, nodes), read back from
the sync's one sacct call: ``show`` and ``ps`` report these, never only what was asked.

A table of its own (one row per job row), so older catalogs gain it without a migration. A
session's ``gpus`` column follows the allocation of its latest job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlmodel import Field, SQLModel, col, select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import JobRecordRow, SessionRecord

T = TypeVar("T")


class JobAllocation(SQLModel, table=True):
    __tablename__ = "job_allocation"
    job_row_id: int = Field(foreign_key="job.id", primary_key=True, ondelete="CASCADE")
    partition: str | None = Field(default=None, max_length=200)
    account: str | None = Field(default=None, max_length=200)
    qos: str | None = Field(default=None, max_length=200)
    gpus: int | None = None
    time_limit: str | None = Field(default=None, max_length=64)
    nodes: int | None = None
    complete: bool = True  # False: accounting had not the whole record yet (asked again)


@dataclass(frozen=True)
class Allocation:
    """One job's resources as Slurm reports them (None: not reported)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    gpus: int | None = None
    time_limit: str | None = None
    nodes: int | None = None

    def values(self) -> tuple[str | int | None, ...]:
        return (self.partition, self.account, self.qos, self.gpus, self.time_limit, self.nodes)

    def known(self) -> bool:
        return any(value is not None for value in self.values())

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def _from_row(row: JobAllocation) -> tuple[Allocation, bool]:
    return (
        Allocation(row.partition, row.account, row.qos, row.gpus, row.time_limit, row.nodes),
        row.complete,
    )


def allocations_of(
    catalog: Catalog, job_row_ids: Sequence[int]
) -> dict[int, tuple[Allocation, bool]]:
    """Stored allocations (and whether accounting's record was complete) by job row id, in
    one query."""
    if not job_row_ids:
        return {}
    with catalog.session() as db:
        rows = db.exec(
            select(JobAllocation).where(col(JobAllocation.job_row_id).in_(list(job_row_ids)))
        )
        return {row.job_row_id: _from_row(row) for row in rows}


def _either(new: T | None, old: T | None) -> T | None:
    return new if new is not None else old


def merged(new: Allocation, old: Allocation | None) -> Allocation:
    """``new``, keeping ``old``'s values where ``new`` reports none (a pending job's line)."""
    if old is None:
        return new
    return Allocation(
        partition=_either(new.partition, old.partition),
        account=_either(new.account, old.account),
        qos=_either(new.qos, old.qos),
        gpus=_either(new.gpus, old.gpus),
        time_limit=_either(new.time_limit, old.time_limit),
        nodes=_either(new.nodes, old.nodes),
    )


def store_allocations(
    catalog: Catalog, jobs: Mapping[int, tuple[int, Allocation, bool]], *, latest: set[int]
) -> int:
    """Store what changed, in one transaction (one read first, so a steady sync writes
    nothing). ``jobs``: job row id -> (session id, allocation, complete); the sessions of the
    job rows in ``latest`` take the job's GPU count. Returns the number of rows written."""
    wanted = {row_id: entry for row_id, entry in jobs.items() if entry[1].known()}
    stored = allocations_of(catalog, list(wanted))
    changed: dict[int, tuple[int, Allocation, bool]] = {}
    for row_id, (session_id, alloc, complete) in wanted.items():
        before = stored.get(row_id)
        new = (merged(alloc, before[0] if before else None), complete)
        if new != before:
            changed[row_id] = (session_id, *new)
    if not changed:
        return 0
    with catalog.session() as db:
        for row_id, (session_id, alloc, complete) in changed.items():
            row = db.get(JobAllocation, row_id) or JobAllocation(job_row_id=row_id)
            row.partition, row.account, row.qos = alloc.partition, alloc.account, alloc.qos
            row.gpus, row.time_limit, row.nodes = alloc.gpus, alloc.time_limit, alloc.nodes
            row.complete = complete
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
    return {job.job_id: found[job.id][0] for job in jobs if job.id is not None and job.id in found}
