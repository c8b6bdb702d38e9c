"""Tables derived from metric points, kept up to date by ingestion in the same transaction as
the points (so they can never disagree with them):

* ``metric_summary``: per session and metric, the count, the last value and the lowest and
  highest values with their steps. A table of 10,000 sessions shows and sorts by "last" and
  "best" without aggregating millions of points; ``compare`` reads best values in one query.
* ``metric_block``: the same per block of 512 lines of ``metrics.jsonl``. A plot of a curve
  with a million points reads ~2,000 blocks (each its min and max) instead of the points.

Kept by :mod:`nsml_hpc.catalog.summaries`; filled once for older catalogs when one is opened
(:mod:`nsml_hpc.catalog.schema`).
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


class MetricBlock(SQLModel, table=True):
    __tablename__ = "metric_block"
    session_id: int = Field(foreign_key="session.id", primary_key=True, ondelete="CASCADE")
    name: str = Field(primary_key=True, max_length=200)
    block: int = Field(primary_key=True)  # line // 512
    points: int = 0
    last_line: int = -1
    last_step: int | None = None
    last_value: float | None = None
    min_value: float | None = None
    min_step: int | None = None
    max_value: float | None = None
    max_step: int | None = None


__all__ = ["MetricBlock", "MetricSummary"]
