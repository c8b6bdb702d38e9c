"""The metric summary table: per session and metric, the count, the last value and the best
values seen so far, kept up to date by ingestion in the same transaction as the points.

It lets a table of 10,000 sessions show and sort by "last" and "best" of a metric without
aggregating millions of points, and ``compare`` read best values in one small query.
"""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class MetricSummary(SQLModel, table=True):
    __tablename__ = "metric_summary"
    session_id: int = Field(foreign_key="session.id", primary_key=True, ondelete="CASCADE")
    name: str = Field(primary_key=True, max_length=200)
    points: int = 0  # all points, NaN/inf (stored as None) included
    last_line: int = -1
    last_step: int | None = None
    last_value: float | None = None
    min_value: float | None = None
    min_step: int | None = None
    max_value: float | None = None
    max_step: int | None = None


def after_create(catalog: object) -> None:
    """Fill the table once for points ingested before it existed (see catalog.summaries)."""
    from nsml_hpc.catalog.engine import Catalog
    from nsml_hpc.catalog.summaries import backfill_summaries

    assert isinstance(catalog, Catalog)
    backfill_summaries(catalog)


__all__ = ["MetricSummary", "after_create"]
