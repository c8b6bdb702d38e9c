"""Catalog tables of datasets and of what a session reads and captures beyond its own files:

* ``dataset_version``: one immutable version of a pushed dataset on a cluster, as its
  manifest on the cluster describes it (the folder on the cluster is the truth; this row
  mirrors it, and ``deleting`` is the claim ``dataset rm`` takes);
* ``session_dataset``: the dataset version a session reads (written with the session's row
  when its number is reserved, so every session that exists names its version);
* ``stdout_capture``: sessions whose printed metrics are read from their Slurm output.

Times are epoch seconds (floats), as in :mod:`nsml_hpc.catalog.models`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class DatasetVersionRecord(SQLModel, table=True):
    __tablename__ = "dataset_version"
    __table_args__ = (UniqueConstraint("cluster", "name", "version", name="uq_dataset_version"),)
    id: int | None = Field(default=None, primary_key=True)
    cluster: str = Field(max_length=64, index=True)
    name: str = Field(max_length=64)
    version: int
    path: str = Field(sa_type=Text)  # the version's folder on the cluster
    bytes: int = Field(default=0, sa_type=BigInteger)
    file_count: int = 0
    digest: str = Field(default="", max_length=64)  # sha256 over the manifest's file list
    created_at: float = 0.0
    created_by: str = Field(default="", max_length=64)
    source: str = Field(default="", sa_type=Text)  # where it was pushed from
    deleting: bool = False


class SessionDatasetRecord(SQLModel, table=True):
    __tablename__ = "session_dataset"
    session_id: int = Field(foreign_key="session.id", primary_key=True, ondelete="CASCADE")
    cluster: str = Field(max_length=64)
    name: str = Field(max_length=64, index=True)
    version: int
    path: str = Field(sa_type=Text)
    staged: bool = False


class StdoutCaptureRecord(SQLModel, table=True):
    __tablename__ = "stdout_capture"
    session_id: int = Field(foreign_key="session.id", primary_key=True, ondelete="CASCADE")
    pattern: str | None = Field(default=None, sa_type=Text)  # None: name=value / name: value


__all__ = ["DatasetVersionRecord", "SessionDatasetRecord", "StdoutCaptureRecord"]
