"""Metric curves for plots, downsampled to a plot's width.

A curve of up to ``RAW_LIMIT`` points is read whole and reduced in Python
(:func:`nsml_hpc.catalog.downsample.minmax`). A longer one is drawn from its stored
blocks (the min and max of every 512 lines, kept by ingestion): a million-point curve costs
~2,000 small rows, never a million Python objects. ``bucketed_series`` does the same
reduction inside the database (one GROUP BY), for comparison in the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from nsml_hpc.catalog.downsample import finite_points, minmax
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import MetricPoint
from nsml_hpc.catalog.summaries import blocks_of, summaries_of

RAW_LIMIT = 20_000

_P = MetricPoint.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Series:
    name: str
    xs: list[float]  # steps
    ys: list[float]
    points: int  # points stored for this metric (before downsampling)
    downsampled: bool


def _where(session_id: int, name: str) -> tuple[object, ...]:
    return (
        _P.session_id == session_id,
        _P.name == name,
        _P.step.is_not(None),
        _P.value.is_not(None),
    )


def metric_series(catalog: Catalog, session_id: int, name: str, buckets: int) -> Series:
    """The curve of ``name`` in session ``session_id``, at most ``2 * buckets`` points."""
    buckets = max(buckets, 1)
    summary = summaries_of(catalog, [session_id], [name]).get((session_id, name))
    stored = summary.points if summary is not None else 0
    if stored > RAW_LIMIT:
        return _from_blocks(catalog, session_id, name, buckets, stored)
    with catalog.session() as db:
        rows = db.execute(
            select(_P.step, _P.value)
            .where(*_where(session_id, name))  # type: ignore[arg-type]
            .order_by(_P.step, _P.line)
        ).all()
    xs, ys = finite_points([row[0] for row in rows], [row[1] for row in rows])
    small_x, small_y = minmax(xs, ys, buckets)
    return Series(name, small_x, small_y, stored, len(small_x) < len(xs))


def _from_blocks(catalog: Catalog, session_id: int, name: str, buckets: int, stored: int) -> Series:
    """Each block's lowest and highest point (at their steps), reduced to ``buckets``."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for block in blocks_of(catalog, session_id, name):
        ends = sorted(
            {(block.min_step, block.min_value), (block.max_step, block.max_value)},
            key=lambda pair: (pair[0] is None, pair[0] or 0),
        )
        for step, value in ends:
            xs.append(step)
            ys.append(value)
    fin_x, fin_y = finite_points(xs, ys)
    small_x, small_y = minmax(fin_x, fin_y, buckets)
    return Series(name, small_x, small_y, stored, True)


def bucketed_series(catalog: Catalog, session_id: int, name: str, buckets: int) -> Series:
    """The same reduction as :func:`metric_series` done by the database over all points."""
    summary = summaries_of(catalog, [session_id], [name]).get((session_id, name))
    stored = summary.points if summary is not None else 0
    where = _where(session_id, name)
    with catalog.session() as db:
        lo = db.execute(select(func.min(_P.step)).where(*where)).scalar()  # type: ignore[arg-type]
        hi = db.execute(select(func.max(_P.step)).where(*where)).scalar()  # type: ignore[arg-type]
        if lo is None or hi is None:
            return Series(name, [], [], stored, False)
        width = int(hi) - int(lo) + 1
        # Integer arithmetic: SQLite and PostgreSQL both truncate integer division.
        bucket = ((_P.step - int(lo)) * buckets // width).label("bucket")
        rows = db.execute(
            select(bucket, func.min(_P.value), func.max(_P.value))
            .where(*where)  # type: ignore[arg-type]
            .group_by(bucket)
            .order_by(bucket)
        ).all()
    xs: list[float] = []
    ys: list[float] = []
    for index, low, high in rows:
        x = int(lo) + (int(index) + 0.5) * width / buckets
        xs.append(x)
        ys.append(float(low))
        if high != low:
            xs.append(x)
            ys.append(float(high))
    return Series(name, xs, ys, stored, True)
