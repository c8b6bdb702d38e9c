"""Metric points: bulk ingestion with the scrape cursor in the same transaction, and reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, insert
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import (
    EventRecord,
    MetricPoint,
    MetricSource,
    ScrapeCursor,
    SessionRecord,
)
from nsml_hpc.catalog.snapshot_models import JobRunRecord
from nsml_hpc.catalog.summaries import update_summaries
from nsml_hpc.runfiles.scrape import POINT_COLUMNS, EventBatch, MetricBatch, MetricPointRow

METRICS_FILE = "metrics.jsonl"
EVENTS_FILE = "events.jsonl"


@dataclass(frozen=True)
class CursorState:
    offset: int = 0
    lines: int = 0
    malformed: int = 0
    updated_at: float = 0.0


def load_cursors(
    catalog: Catalog, session_ids: Sequence[int]
) -> dict[tuple[int, str], CursorState]:
    """Every cursor of ``session_ids`` in one query."""
    if not session_ids:
        return {}
    table = ScrapeCursor.__table__.c  # type: ignore[attr-defined]
    columns = (
        table.session_id,
        table.file,
        table.offset,
        table.lines,
        table.malformed,
        table.updated_at,
    )
    with catalog.session() as db:
        rows = db.execute(
            sql_select(*columns).where(col(ScrapeCursor.session_id).in_(list(session_ids)))
        ).all()
    return {
        (session_id, file): CursorState(offset, lines, malformed, updated_at)
        for session_id, file, offset, lines, malformed, updated_at in rows
    }


def move_cursor(db: Session, session_id: int, file: str, new: CursorState, now: float) -> None:
    cursor = db.get(ScrapeCursor, (session_id, file))
    if cursor is None:
        cursor = ScrapeCursor(session_id=session_id, file=file)
    cursor.offset, cursor.lines, cursor.malformed = new.offset, new.lines, new.malformed
    cursor.updated_at = now
    db.add(cursor)


def _insert_points(db: Session, points: list[MetricPointRow]) -> None:
    """One executemany straight to the driver: the ORM's per-row work would cost 4x."""
    connection = db.connection()
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    statement = (
        f"INSERT INTO {MetricPoint.__tablename__} ({', '.join(POINT_COLUMNS)}) "
        f"VALUES ({', '.join([marker] * len(POINT_COLUMNS))})"
    )
    connection.exec_driver_sql(statement, points)


def store_metric_batch(
    catalog: Catalog,
    session_id: int,
    batch: MetricBatch,
    cursor: CursorState,
    new_offset: int,
    now: float,
    *,
    file: str = METRICS_FILE,
    sources: dict[str, str] | None = None,
) -> None:
    """Insert ``batch`` and move the cursor of ``file`` to ``new_offset`` atomically (all or
    nothing). ``sources`` records where metrics not reported through the API came from."""
    with catalog.session() as db:
        if batch.points:
            _insert_points(db, batch.points)
            update_summaries(db, session_id, batch.points)
        move_cursor(
            db,
            session_id,
            file,
            CursorState(new_offset, cursor.lines + batch.lines, cursor.malformed + batch.malformed),
            now,
        )
        if sources:
            known = set(
                db.exec(
                    select(MetricSource.name).where(MetricSource.session_id == session_id)
                ).all()
            )
            for name, source in sources.items():
                if name not in known:
                    db.add(MetricSource(session_id=session_id, name=name, source=source))
        record = db.get(SessionRecord, session_id)
        if record is not None:
            merged = json.loads(record.last_metrics_json or "{}")
            merged.update(batch.last_metrics)
            record.last_metrics_json = json.dumps(merged, sort_keys=True)
            if batch.last_step is not None:
                record.last_step = batch.last_step
            record.metric_count += len(batch.points)
            record.malformed_lines += batch.malformed
            record.updated_at = now
            db.add(record)


def store_event_batch(
    catalog: Catalog,
    session_id: int,
    batch: EventBatch,
    cursor: CursorState,
    new_offset: int,
    now: float,
) -> None:
    with catalog.session() as db:
        if batch.events:
            db.execute(insert(EventRecord), batch.events)
        move_cursor(
            db,
            session_id,
            EVENTS_FILE,
            CursorState(new_offset, cursor.lines + batch.lines, cursor.malformed + batch.malformed),
            now,
        )


def touch_cursor(catalog: Catalog, session_id: int, file: str, now: float) -> None:
    """Record that ``file`` (a pseudo-file such as the discovery marker) was looked at now."""
    with catalog.session() as db:
        cursor = db.get(ScrapeCursor, (session_id, file)) or ScrapeCursor(
            session_id=session_id, file=file
        )
        cursor.updated_at = now
        db.add(cursor)


def metric_sources(catalog: Catalog, session_id: int) -> dict[str, str]:
    """Metric name -> where it came from, for metrics NOT reported through ``report()``."""
    with catalog.session() as db:
        rows = db.exec(select(MetricSource).where(MetricSource.session_id == session_id)).all()
    return {row.name: row.source for row in rows}


def superseded(point: Any = MetricPoint) -> Any:
    """SQL condition: the point belongs to the tail an earlier job run lost and a later run
    (requeued, resumed from a snapshot) redid. Readers hide these; the file keeps them."""
    run = JobRunRecord
    return exists().where(
        run.session_id == point.session_id,
        col(run.supersede_from_step).is_not(None),
        point.line >= 0,  # captured points (TensorBoard/CSV) have negative line numbers
        point.line < run.first_line,
        point.step >= run.supersede_from_step,
    )


def metric_rows(
    catalog: Catalog, session_id: int, *, include_superseded: bool = False
) -> list[MetricPoint]:
    query = select(MetricPoint).where(MetricPoint.session_id == session_id)
    if not include_superseded:
        query = query.where(~superseded())
    with catalog.session() as db:
        return list(db.exec(query.order_by(col(MetricPoint.line), col(MetricPoint.id))).all())


def superseded_count(catalog: Catalog, session_id: int) -> int:
    with catalog.session() as db:
        return int(
            db.exec(
                select(func.count())
                .select_from(MetricPoint)
                .where(MetricPoint.session_id == session_id, superseded())
            ).one()
        )


def metric_lines(
    catalog: Catalog, session_id: int, *, include_superseded: bool = False
) -> list[dict[str, Any]]:
    """The points reported through ``report()`` regrouped as the metrics.jsonl lines they came
    from: ``{"step":…, "time":…, name: value}`` (captured points have negative line numbers).
    Points a resumed job run redid are left out unless ``include_superseded``."""
    lines: dict[int, dict[str, Any]] = {}
    for point in metric_rows(catalog, session_id, include_superseded=include_superseded):
        if point.line < 0:
            continue
        line = lines.setdefault(point.line, {"step": point.step, "time": point.time})
        line[point.name] = point.value
    return [lines[key] for key in sorted(lines)]
