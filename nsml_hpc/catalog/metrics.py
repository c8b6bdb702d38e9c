"""Metric points: bulk ingestion with the scrape cursor in the same transaction, and reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import EventRecord, MetricPoint, ScrapeCursor, SessionRecord
from nsml_hpc.catalog.summaries import update_summaries
from nsml_hpc.scrape import POINT_COLUMNS, EventBatch, MetricBatch, MetricPointRow

METRICS_FILE = "metrics.jsonl"
EVENTS_FILE = "events.jsonl"


@dataclass(frozen=True)
class CursorState:
    offset: int = 0
    lines: int = 0
    malformed: int = 0


def load_cursors(
    catalog: Catalog, session_ids: Sequence[int]
) -> dict[tuple[int, str], CursorState]:
    """Every cursor of ``session_ids`` in one query."""
    if not session_ids:
        return {}
    table = ScrapeCursor.__table__.c  # type: ignore[attr-defined]
    columns = (table.session_id, table.file, table.offset, table.lines, table.malformed)
    with catalog.session() as db:
        rows = db.execute(
            sql_select(*columns).where(col(ScrapeCursor.session_id).in_(list(session_ids)))
        ).all()
    return {
        (session_id, file): CursorState(offset, lines, malformed)
        for session_id, file, offset, lines, malformed in rows
    }


def _move_cursor(db: Session, session_id: int, file: str, new: CursorState, now: float) -> None:
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
) -> None:
    """Insert ``batch`` and move the cursor to ``new_offset`` atomically (all or nothing)."""
    with catalog.session() as db:
        if batch.points:
            _insert_points(db, batch.points)
            update_summaries(db, session_id, batch.points)
        _move_cursor(
            db,
            session_id,
            METRICS_FILE,
            CursorState(new_offset, cursor.lines + batch.lines, cursor.malformed + batch.malformed),
            now,
        )
        record = db.get(SessionRecord, session_id)
        if record is not None:
            merged = json.loads(record.last_metrics_json or "{}")
            merged.update(batch.last_metrics)
            record.last_metrics_json = json.dumps(merged, sort_keys=True)
            if batch.last_step is not None:
                record.last_step = batch.last_step
            record.metric_count += len(batch.points)
            record.malformed_lines = cursor.malformed + batch.malformed
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
        _move_cursor(
            db,
            session_id,
            EVENTS_FILE,
            CursorState(new_offset, cursor.lines + batch.lines, cursor.malformed + batch.malformed),
            now,
        )


def metric_rows(catalog: Catalog, session_id: int) -> list[MetricPoint]:
    with catalog.session() as db:
        return list(
            db.exec(
                select(MetricPoint)
                .where(MetricPoint.session_id == session_id)
                .order_by(col(MetricPoint.line), col(MetricPoint.id))
            ).all()
        )


def metric_lines(catalog: Catalog, session_id: int) -> list[dict[str, Any]]:
    """The stored points regrouped as the lines they came from: ``{"step":…, name: value}``."""
    lines: dict[int, dict[str, Any]] = {}
    for point in metric_rows(catalog, session_id):
        line = lines.setdefault(point.line, {"step": point.step, "time": point.time})
        line[point.name] = point.value
    return [lines[key] for key in sorted(lines)]
