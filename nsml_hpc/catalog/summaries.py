"""Metric summaries: folded from each ingested batch (same transaction as its points), filled
once for older catalogs, and read by the session table, ``compare`` and the plots."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, tuple_, update
from sqlmodel import Session, col

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import CatalogMeta, MetricPoint
from nsml_hpc.catalog.summary_models import MetricBlock, MetricSummary
from nsml_hpc.errors import CatalogError
from nsml_hpc.runfiles.scrape import MetricPointRow
from nsml_hpc.runfiles.summary import (
    BLOCK_LINES,
    BLOCK_SHIFT,
    SUMMARY_FIELDS,
    Summary,
    summarize_points,
    totals_of,
)

BACKFILL_KEY = "metric_summary_filled"
__all__ = ["BLOCK_LINES", "BLOCK_SHIFT", "Summary", "summarize_points"]


def _as_summary(row: MetricSummary | MetricBlock) -> Summary:
    return Summary(
        points=row.points,
        last_line=row.last_line,
        last_step=row.last_step,
        last_value=row.last_value,
        min_value=row.min_value,
        min_step=row.min_step,
        max_value=row.max_value,
        max_step=row.max_step,
    )


KEYS_PER_QUERY = 2000  # (session, name[, block]) keys per IN list: far below SQLite's limit


def _chunks(items: list[Any], size: int = KEYS_PER_QUERY) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _summary_values(merged: Summary) -> dict[str, Any]:
    return dict(vars(merged))


def update_summaries(db: Session, session_id: int, points: Sequence[MetricPointRow]) -> None:
    """Merge a batch into the stored summaries and blocks, inside the caller's transaction."""
    update_summaries_many(db, {session_id: points})


def update_summaries_many(
    db: Session,
    batches: Mapping[int, Sequence[MetricPointRow]],
    folded: Mapping[int, dict[tuple[str, int], Summary]] | None = None,
) -> None:
    """Merge the batches of many sessions into the stored summaries and blocks, inside the
    caller's transaction, with statements that do not grow with the number of sessions: one
    read and at most one UPDATE executemany and one INSERT executemany per table. ``folded``
    holds block summaries the parser already folded (per session), for those batches."""
    totals: dict[tuple[int, str], Summary] = {}
    blocks: dict[tuple[int, str, int], Summary] = {}
    for session_id, points in batches.items():
        if folded is not None and session_id in folded:  # folded while parsing
            session_blocks = folded[session_id]
            session_totals = totals_of(session_blocks)
        else:
            session_totals, session_blocks = summarize_points(points)
        for name, summary in session_totals.items():
            totals[(session_id, name)] = summary
        for (name, index), summary in session_blocks.items():
            blocks[(session_id, name, index)] = summary
    if not totals:
        return
    _merge_rows(db, MetricSummary, ("session_id", "name"), totals)
    # Lines only grow, so only the first block of each metric in a batch can already exist
    # (the one the previous batch ended in); asking for every key is exact and as cheap.
    _merge_rows(db, MetricBlock, ("session_id", "name", "block"), blocks)


def _merge_rows(
    db: Session, model: Any, key_columns: tuple[str, ...], later: dict[Any, Summary]
) -> None:
    table = model.__table__
    keys = list(later)
    stored: dict[Any, Summary] = {}
    columns = [table.c[name] for name in key_columns]
    for chunk in _chunks(keys):
        rows = db.execute(select(table).where(tuple_(*columns).in_(chunk))).mappings()
        for row in rows:
            key = tuple(row[name] for name in key_columns)
            stored[key] = Summary(**{field: row[field] for field in SUMMARY_FIELDS})
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for key, summary in later.items():
        named = dict(zip(key_columns, key, strict=True))
        if key in stored:
            merged = stored[key]
            merged.merge(summary)
            updates.append({**{f"k_{k}": v for k, v in named.items()}, **_summary_values(merged)})
        else:
            inserts.append({**named, **_summary_values(summary)})
    if updates:
        statement = (
            update(table)
            .where(*(table.c[name] == bindparam(f"k_{name}") for name in key_columns))
            .values({field: bindparam(field) for field in SUMMARY_FIELDS})
        )
        db.connection().execute(statement, updates)
    if inserts:
        db.connection().execute(insert(table), inserts)


def backfill_summaries(catalog: Catalog) -> None:
    """Summaries of points ingested before this table existed (once per catalog).

    Each session's summaries are computed from all its points and written in the transaction
    that read them, replacing whatever is there, so a sync running meanwhile cannot make a
    point count twice.
    """
    with catalog.session() as db:
        if db.get(CatalogMeta, BACKFILL_KEY) is not None:
            return
    point = MetricPoint.__table__.c  # type: ignore[attr-defined]
    with catalog.session() as db:
        session_ids = [row[0] for row in db.execute(select(point.session_id).distinct()).all()]
    for session_id in session_ids:
        with catalog.session() as db:
            rows = db.execute(
                select(
                    point.session_id, point.line, point.step, point.time, point.name, point.value
                )
                .where(point.session_id == session_id)
                .order_by(point.line, point.id)
            ).all()
            db.execute(delete(MetricSummary).where(col(MetricSummary.session_id) == session_id))
            db.execute(delete(MetricBlock).where(col(MetricBlock.session_id) == session_id))
            update_summaries(db, session_id, [tuple(row) for row in rows])
    try:
        with catalog.session() as db:
            if db.get(CatalogMeta, BACKFILL_KEY) is None:
                db.add(CatalogMeta(key=BACKFILL_KEY, value="1"))
    except CatalogError:
        pass  # another process marked it at the same moment


def summaries_of(
    catalog: Catalog, session_ids: Sequence[int], names: Sequence[str] | None = None
) -> dict[tuple[int, str], Summary]:
    """Summaries of ``session_ids`` (all metrics, or only ``names``) in one query."""
    if not session_ids:
        return {}
    query = select(MetricSummary).where(col(MetricSummary.session_id).in_(list(session_ids)))
    if names is not None:
        query = query.where(col(MetricSummary.name).in_(list(names)))
    with catalog.session() as db:
        rows = db.execute(query).scalars().all()
    return {(row.session_id, row.name): _as_summary(row) for row in rows}


def metric_names(catalog: Catalog, session_ids: Sequence[int] | None = None) -> list[str]:
    """Distinct metric names (of ``session_ids``, or of the whole catalog), sorted."""
    query = select(col(MetricSummary.name)).distinct()
    if session_ids is not None:
        if not session_ids:
            return []
        query = query.where(col(MetricSummary.session_id).in_(list(session_ids)))
    with catalog.session() as db:
        return sorted(row[0] for row in db.execute(query).all())


def blocks_of(catalog: Catalog, session_id: int, name: str) -> list[Summary]:
    """The stored blocks of one metric of one session, in line order."""
    with catalog.session() as db:
        rows = db.execute(
            select(MetricBlock)
            .where(col(MetricBlock.session_id) == session_id, col(MetricBlock.name) == name)
            .order_by(col(MetricBlock.block))
        ).scalars()
        return [_as_summary(row) for row in rows]
