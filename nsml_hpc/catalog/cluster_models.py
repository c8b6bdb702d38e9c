"""The last answer about a cluster's GPUs and a user's queue, shared between processes.

One row per (cluster, user): when it was last claimed (the shared floor: ten open cluster
views mean one sinfo + squeue per floor, not ten), when it was fetched, and what came back.
"""

from __future__ import annotations

from sqlalchemy import Text
from sqlmodel import Field, SQLModel


class ClusterInfoCache(SQLModel, table=True):
    __tablename__ = "cluster_info_cache"
    cluster: str = Field(primary_key=True, max_length=64)
    user: str = Field(primary_key=True, max_length=64)
    claimed_at: float = 0.0
    fetched_at: float | None = None
    payload_json: str = Field(default="{}", sa_type=Text)
    error: str | None = Field(default=None, sa_type=Text)
    error_at: float | None = None


__all__ = ["ClusterInfoCache"]
