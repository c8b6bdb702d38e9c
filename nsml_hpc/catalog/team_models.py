"""Catalog tables of shared (team) catalogs: who may act on everyone's sessions, and what
ingestion refused and where (so ``show`` can name the line).

Times are epoch seconds (floats), as in :mod:`nsml_hpc.catalog.models`.
"""

from __future__ import annotations

from sqlalchemy import Text
from sqlmodel import Field, SQLModel


class CatalogAdmin(SQLModel, table=True):
    """A catalog user allowed to stop, remove and change every user's sessions. On a
    PostgreSQL catalog with row-level security only the team's admin can change this table
    (``nsml-hpc catalog setup-team --admin NAME``)."""

    __tablename__ = "catalog_admin"
    name: str = Field(primary_key=True, max_length=64)


class IngestProblem(SQLModel, table=True):
    """A line of a run-directory file that ingestion refused (malformed, or a name with
    control characters), kept for the first few per session and file."""

    __tablename__ = "ingest_problem"
    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="session.id", index=True, ondelete="CASCADE")
    file: str = Field(max_length=200)
    line: int  # 1-based, as an editor shows it (0: the file as a whole)
    problem: str = Field(sa_type=Text)
    at: float


__all__ = ["CatalogAdmin", "IngestProblem"]
