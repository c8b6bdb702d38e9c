"""Metric curves for plots, downsampled to a plot's width.

A curve of up to ``RAW_FACTOR * buckets`` points is read whole and reduced in Python
(:func:`nsml_hpc.downsample.minmax`); a longer one is reduced INSIDE the database: one
GROUP BY over equal step ranges returns each range's min and max, so a million-point curve
costs one aggregate query and a few hundred rows, never a million Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import MetricPoint
from nsml_hpc.catalog.summaries import summaries_of
from nsml_hpc.downsample import finite_points, minmax

RAW_FACTOR = 8

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
    if stored <= RAW_FACTOR * buckets:
        with catalog.session() as db:
            rows = db.execute(
                select(_P.step, _P.value)
                .where(*_where(session_id, name))  # type: ignore[arg-type]
                .order_by(_P.step, _P.line)
            ).all()
        xs, ys = finite_points([row[0] for row in rows], [row[1] for row in rows])
        small_x, small_y = minmax(xs, ys, buckets)
        return Series(name, small_x, small_y, stored, len(small_x) < len(xs))
    return _bucketed(catalog, session_id, name, buckets, stored)


def _bucketed(catalog: Catalog, session_id: int, name: str, buckets: int, stored: int) -> Series:
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
