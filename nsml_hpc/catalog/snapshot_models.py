"""Catalog tables of the snapshot feature: snapshots, fork lineage, job runs (one per Slurm
start of a session, which is what makes a requeued session's metric history continuous), and
the per-session scan state that keeps sync from re-reading unchanged snapshot folders.

Times are epoch seconds (floats), as in :mod:`nsml_hpc.catalog.models`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class SnapshotRecord(SQLModel, table=True):
    """One snapshot folder ``<run_dir>/snapshots/<tag>/`` as its manifest describes it."""

    __tablename__ = "snapshot"
    __table_args__ = (UniqueConstraint("session_id", "tag", name="uq_snapshot_session_tag"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="session.id", index=True, ondelete="CASCADE")
    tag: str = Field(max_length=128)
    step: int | None = None
    metrics_json: str = Field(default="{}", sa_type=Text)
    bytes: int = Field(default=0, sa_type=BigInteger)
    file_count: int = 0
    created_at: float
    job_id: str | None = Field(default=None, max_length=64)
    restart_count: int = 0
    pinned: bool = False
    forked_from: bool = False  # a session was forked from it: never deleted by gc
    deleting: bool = False  # claimed by gc / model rm; hidden; finished by the next gc
    problem: str | None = Field(default=None, sa_type=Text)  # damaged: what is wrong
    dir_mtime_ns: int = Field(default=0, sa_type=BigInteger)  # to skip unchanged folders
    seen_at: float = 0.0


class LineageRecord(SQLModel, table=True):
    """A forked session and where it came from (the parent may be gone by now)."""

    __tablename__ = "lineage"
    child_session_id: int = Field(foreign_key="session.id", primary_key=True, ondelete="CASCADE")
    parent_session_id: int | None = Field(
        default=None, foreign_key="session.id", index=True, ondelete="SET NULL"
    )
    parent_name: str = Field(max_length=200)
    parent_tag: str = Field(max_length=128)
    parent_step: int | None = None
    parent_snapshot_path: str = Field(sa_type=Text)
    overrides_json: str = Field(default="{}", sa_type=Text)
    created_at: float


class JobRunRecord(SQLModel, table=True):
    """One start of a session's job (a requeued job id starts again with a new restart count).

    Metric lines before ``first_line`` came from earlier runs; those with a step at or above
    ``supersede_from_step`` belong to the tail an earlier run lost, and this run redid them,
    so readers hide them (the metrics file itself stays append-only).
    """

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("session_id", "job_id", "restart_count", name="uq_job_run"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="session.id", index=True, ondelete="CASCADE")
    job_id: str = Field(default="", max_length=64)
    restart_count: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    host: str | None = Field(default=None, max_length=200)
    exit_code: int | None = None
    outcome: str | None = Field(default=None, max_length=32)  # ended / requeued / ...
    first_line: int = 0
    resume_tag: str | None = Field(default=None, max_length=128)
    resume_step: int | None = None
    first_step: int | None = None  # the first step this run reported
    supersede_from_step: int | None = None


class SnapshotScan(SQLModel, table=True):
    """When a session's ``snapshots/`` folder was last read, and its mtime then."""

    __tablename__ = "snapshot_scan"
    session_id: int = Field(foreign_key="session.id", primary_key=True, ondelete="CASCADE")
    dir_mtime_ns: int = Field(default=0, sa_type=BigInteger)
    scanned_at: float = 0.0


class FoundCheckpointRecord(SQLModel, table=True):
    """A snapshot row that is a checkpoint file the training code wrote itself (a Lightning
    ``epoch=E-step=S.ckpt``, a ``torch.save`` file), found in the session's working folder.
    Its snapshot row carries step, metrics, size, pin and fork protection like any other."""

    __tablename__ = "found_checkpoint"
    snapshot_id: int = Field(foreign_key="snapshot.id", primary_key=True, ondelete="CASCADE")
    session_id: int = Field(foreign_key="session.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=16)  # lightning | torch | safetensors
    path: str = Field(sa_type=Text)  # relative to the run directory
    mtime_ns: int = Field(default=0, sa_type=BigInteger)


__all__ = [
    "FoundCheckpointRecord",
    "JobRunRecord",
    "LineageRecord",
    "SnapshotRecord",
    "SnapshotScan",
]
