"""The Slurm clock of each user on each cluster, shared by every process on this catalog.

One row per (cluster, user): when a user's action or the files last asked for Slurm, the
ceiling's token bucket, when squeue last re-read pending reasons, and counters for ``cluster
test`` and the benchmarks. When the cluster was last asked is the shared poll record's
(:class:`~nsml_hpc.catalog.models.ClusterPoll`), whose compare-and-set lets one process ask.
"""

from __future__ import annotations

from sqlalchemy import Text
from sqlmodel import Field, SQLModel


class SlurmClockRecord(SQLModel, table=True):
    __tablename__ = "slurm_clock"
    cluster: str = Field(primary_key=True, max_length=64)
    user: str = Field(primary_key=True, max_length=64)
    wanted_at: float = 0.0  # a user acted, or files showed something only Slurm can explain
    wanted_why: str | None = Field(default=None, sa_type=Text)
    tokens: float | None = None  # the ceiling's bucket (None: full)
    tokens_at: float = 0.0
    last_queue_at: float = 0.0  # squeue last asked (pending reasons, jobs sacct misses)
    commands: int = 0  # Slurm commands sync ran (ever)
    deferred: int = 0  # queries the ceiling put off (ever)


__all__ = ["SlurmClockRecord"]
