"""Catalog tables. Times are epoch seconds (floats) so SQLite and PostgreSQL agree exactly.

``XBase`` holds the shared fields, ``X(table=True)`` the stored row, ``XPublic`` what the
library hands out (with the id).
"""

from __future__ import annotations

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class SessionBase(SQLModel):
    # ``project/N``: unique per owner (``owner/project/N`` is unique in the catalog).
    name: str = Field(index=True, max_length=200)
    project: str = Field(index=True, max_length=64)
    number: int
    user: str = Field(max_length=64)  # the cluster account the job runs as
    # Who owns the session in the catalog: the OS login user, or on a PostgreSQL catalog with
    # row-level security the database role (see nsml_hpc.catalog.ownership).
    owner: str = Field(index=True, max_length=64)
    cluster: str = Field(index=True, max_length=64)
    state: str = Field(index=True, max_length=32)
    reason: str | None = Field(default=None, max_length=200)
    exit_code: int | None = None
    run_dir: str = Field(sa_column_kwargs={"nullable": False}, sa_type=Text)
    spec_json: str = Field(sa_type=Text)
    hyperparameters_json: str = Field(default="{}", sa_type=Text)
    memo: str = Field(default="", sa_type=Text)
    gpus: int = 0
    created_at: float
    submitted_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    elapsed_s: float | None = None
    last_step: int | None = None
    last_metrics_json: str = Field(default="{}", sa_type=Text)
    metric_count: int = 0
    malformed_lines: int = 0
    updated_at: float


class SessionRecord(SessionBase, table=True):
    __tablename__ = "session"
    __table_args__ = (
        UniqueConstraint("owner", "project", "number", name="uq_session_owner_project_number"),
    )
    id: int | None = Field(default=None, primary_key=True)


class SessionPublic(SessionBase):
    id: int


class JobRecordRow(SQLModel, table=True):
    """One Slurm job id of a session (a session can have several over its life)."""

    __tablename__ = "job"
    __table_args__ = (UniqueConstraint("cluster", "job_id", name="uq_job_cluster_job_id"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="session.id", index=True, ondelete="CASCADE")
    cluster: str = Field(max_length=64)
    job_id: str = Field(max_length=64)
    state: str = Field(max_length=32)
    reason: str | None = Field(default=None, max_length=200)
    exit_code: int | None = None
    submitted_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    elapsed_s: float | None = None
    node_list: str | None = Field(default=None, sa_type=Text)


class StateChange(SQLModel, table=True):
    __tablename__ = "state_change"
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="session.id", index=True, ondelete="CASCADE")
    at: float
    state: str = Field(max_length=32)
    reason: str | None = Field(default=None, max_length=200)
    job_id: str | None = Field(default=None, max_length=64)


class MetricPoint(SQLModel, table=True):
    """One value of one metric at one reported line (long format)."""

    __tablename__ = "metric_point"
    __table_args__ = (Index("ix_metric_point_session_name_step", "session_id", "name", "step"),)
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="session.id", ondelete="CASCADE")
    # 0-based line number in metrics.jsonl: ties the point to its source. Points captured from
    # other files (TensorBoard, CSV logs) are numbered -1, -2, ... in the order they came in.
    line: int
    step: int | None = None
    time: float | None = None
    name: str = Field(max_length=200)
    value: float | None = None  # None stands for NaN/inf written as such


class MetricSource(SQLModel, table=True):
    """Where a metric came from when it was not reported through ``report()``."""

    __tablename__ = "metric_source"
    session_id: int = Field(foreign_key="session.id", primary_key=True, ondelete="CASCADE")
    name: str = Field(primary_key=True, max_length=200)
    source: str = Field(sa_type=Text)  # "tensorboard:<file>" or "csv:<file>"


class GpuUsage(SQLModel, table=True):
    """Where a session's GPUs stand, from the job wrapper's nvidia-smi samples (gpu.jsonl)."""

    __tablename__ = "gpu_usage"
    session_id: int = Field(foreign_key="session.id", primary_key=True, ondelete="CASCADE")
    idle_since: float | None = None
    last_sample_at: float | None = None
    last_util: float | None = None
    samples: int = 0
    warnings: int = 0


class EventRecord(SQLModel, table=True):
    """A lifecycle line the job wrapper wrote to events.jsonl."""

    __tablename__ = "event"
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="session.id", index=True, ondelete="CASCADE")
    at: float | None = None
    kind: str = Field(max_length=64)
    job_id: str | None = Field(default=None, max_length=64)
    data_json: str = Field(default="{}", sa_type=Text)


class ScrapeCursor(SQLModel, table=True):
    """How far a run-directory file has been ingested; moved in the same transaction as its rows."""

    __tablename__ = "scrape_cursor"
    session_id: int = Field(foreign_key="session.id", primary_key=True, ondelete="CASCADE")
    file: str = Field(primary_key=True, max_length=200)
    offset: int = 0
    lines: int = 0
    malformed: int = 0
    updated_at: float = 0.0


class ClusterPoll(SQLModel, table=True):
    """When each cluster was last asked about a user's sessions, shared by every process
    using this catalog (each user's sync asks only about that user's sessions)."""

    __tablename__ = "cluster_poll"
    cluster: str = Field(primary_key=True, max_length=64)
    user: str = Field(primary_key=True, max_length=64)  # the catalog user (session.owner)
    last_query_at: float = 0.0
    last_ok: bool = True
    last_error: str | None = Field(default=None, sa_type=Text)
    queries: int = 0


class CatalogMeta(SQLModel, table=True):
    __tablename__ = "catalog_meta"
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_type=Text)


class RetiredNumber(SQLModel, table=True):
    """The highest number a removed session of ``owner``'s ``project`` had, so that ``rm``
    (even ``--purge``) never frees a name. Its owner's row: a team member writes their own."""

    __tablename__ = "retired_number"
    owner: str = Field(primary_key=True, max_length=64)
    project: str = Field(primary_key=True, max_length=64)
    number: int


__all__ = [
    "CatalogMeta",
    "ClusterPoll",
    "EventRecord",
    "GpuUsage",
    "JobRecordRow",
    "MetricPoint",
    "MetricSource",
    "RetiredNumber",
    "ScrapeCursor",
    "SessionPublic",
    "SessionRecord",
    "StateChange",
]
