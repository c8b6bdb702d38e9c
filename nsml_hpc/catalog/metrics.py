"""Metric points: bulk ingestion with the scrape cursor in the same transaction, and reads."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, NamedTuple

from sqlalchemy import bindparam, case, delete, exists, func, insert, update
from sqlalchemy import select as sql_select
from sqlalchemy.engine import Connection
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
from nsml_hpc.catalog.summaries import update_summaries_many
from nsml_hpc.catalog.summary_models import MetricBlock, MetricSummary
from nsml_hpc.catalog.team_models import IngestProblem
from nsml_hpc.job.layout import EVENTS_FILE, METRICS_FILE
from nsml_hpc.job.text import printable
from nsml_hpc.runfiles.scrape import POINT_COLUMNS, EventBatch, MetricBatch, MetricPointRow
from nsml_hpc.runfiles.summary import Summary


class CursorState(NamedTuple):  # a tuple: a sync loads thousands (a frozen dataclass was 4x)
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


POINTS_PER_STATEMENT = 1000  # rows of one multi-row INSERT (6,000 parameters)


def _points_per_statement(connection: Connection) -> int:
    """As many rows a statement as the database takes parameters (an old SQLite: 999)."""
    per = POINTS_PER_STATEMENT
    if connection.dialect.name == "sqlite":
        import sqlite3

        driver = connection.connection.driver_connection
        if isinstance(driver, sqlite3.Connection):
            limit = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            per = min(per, limit // len(POINT_COLUMNS))
    return max(1, per)


def _insert_points(db: Session, points: list[MetricPointRow]) -> None:
    """Straight to the driver, inside the session's transaction: one executemany of
    multi-row INSERTs (``POINTS_PER_STATEMENT`` rows each) and one statement for the rest.
    The ORM's per-row work would cost 4x; a row per statement costs the driver a bind,
    step and reset each (about a third more than these)."""
    if not points:
        return
    connection = db.connection()
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    row = f"({', '.join([marker] * len(POINT_COLUMNS))})"
    head = f"INSERT INTO {MetricPoint.__tablename__} ({', '.join(POINT_COLUMNS)}) VALUES "
    per = _points_per_statement(connection)
    whole = len(points) - len(points) % per
    flat = chain.from_iterable
    if whole:
        connection.exec_driver_sql(
            head + ", ".join([row] * per),
            [tuple(flat(points[start : start + per])) for start in range(0, whole, per)],
        )
    rest = points[whole:]
    if rest:
        connection.exec_driver_sql(head + ", ".join([row] * len(rest)), tuple(flat(rest)))


MAX_STORED_PROBLEMS = 20  # per session and file: enough to find the cause


def store_problems(
    db: Session, session_id: int, file: str, problems: Sequence[tuple[int, str]], now: float
) -> None:
    """Keep the first refused lines of ``file`` (line number, why) for ``show``."""
    if not problems:
        return
    kept = db.exec(
        select(func.count())
        .select_from(IngestProblem)
        .where(IngestProblem.session_id == session_id, IngestProblem.file == printable(file)[:200])
    ).one()
    for line, why in problems[: max(0, MAX_STORED_PROBLEMS - int(kept))]:
        db.add(
            IngestProblem(
                session_id=session_id, file=printable(file)[:200], line=line, problem=why, at=now
            )
        )


@dataclass
class MetricIngest:
    """One file's new metric points and where its cursor moves (one item of a batched store)."""

    session_id: int
    batch: MetricBatch
    cursor: CursorState
    new_offset: int
    file: str = METRICS_FILE
    sources: dict[str, str] | None = None  # metric -> where it came from (captured files)


@dataclass
class EventIngest:
    session_id: int
    batch: EventBatch
    cursor: CursorState
    new_offset: int


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
    printed_sessions: Collection[int] = (),
) -> None:
    """Insert ``batch`` and move the cursor of ``file`` to ``new_offset`` atomically (all or
    nothing). ``sources`` records where metrics not reported through the API came from."""
    store_ingests(
        catalog,
        [MetricIngest(session_id, batch, cursor, new_offset, file, sources)],
        [],
        now,
        printed_sessions=printed_sessions,
    )


def store_event_batch(
    catalog: Catalog,
    session_id: int,
    batch: EventBatch,
    cursor: CursorState,
    new_offset: int,
    now: float,
) -> None:
    store_ingests(catalog, [], [EventIngest(session_id, batch, cursor, new_offset)], now)


def store_ingests(
    catalog: Catalog,
    metrics: Sequence[MetricIngest],
    events: Sequence[EventIngest],
    now: float,
    *,
    printed_sessions: Collection[int] = (),
) -> None:
    """Store the new points and events of many files of many sessions, and move every one of
    their cursors, in ONE transaction (all or nothing: a crash at any instant loses and
    doubles nothing), with statements that do not grow with the number of sessions.

    ``printed_sessions`` capture metrics from their printed output: a metric that one of them
    printed before and that now arrives through ``report()`` or a captured file is handed
    over in the same transaction (its printed points removed), so it is never counted twice."""
    if not metrics and not events:
        return
    with catalog.session() as db:
        if printed_sessions:
            _hand_over_printed(db, metrics, printed_sessions)
        points = [point for item in metrics for point in item.batch.points]
        if points:
            _insert_points(db, points)
            by_session: dict[int, list[MetricPointRow]] = {}
            folded: dict[int, dict[tuple[str, int], Summary]] = {}
            unfolded: set[int] = set()
            for item in metrics:
                by_session.setdefault(item.session_id, []).extend(item.batch.points)
                if item.batch.blocks is None:
                    unfolded.add(item.session_id)
                elif item.batch.points:
                    _merge_blocks(folded.setdefault(item.session_id, {}), item.batch.blocks)
            for session_id in unfolded:  # a session with a captured batch: summarize them all
                folded.pop(session_id, None)
            update_summaries_many(db, by_session, folded)
        for item in metrics:
            store_problems(db, item.session_id, item.file, item.batch.problems, now)
        for event_item in events:
            store_problems(db, event_item.session_id, EVENTS_FILE, event_item.batch.problems, now)
        rows = [event for item in events for event in item.batch.events]
        if rows:  # Core, not the ORM: one executemany, no per-row RETURNING
            db.connection().execute(insert(EventRecord.__table__), rows)  # type: ignore[attr-defined]
        moves = [
            (item.session_id, item.file, item.cursor, item.new_offset, item.batch)
            for item in metrics
        ] + [
            (item.session_id, EVENTS_FILE, item.cursor, item.new_offset, item.batch)
            for item in events
        ]
        _move_cursors(
            db,
            [
                (
                    session_id,
                    file,
                    CursorState(
                        new_offset,
                        cursor.lines + batch.lines,
                        cursor.malformed + batch.malformed,
                    ),
                )
                for session_id, file, cursor, new_offset, batch in moves
            ],
            now,
        )
        _add_sources(db, [item for item in metrics if item.sources])
        _update_sessions(db, metrics, now)


PRINTED_SOURCE = "stdout:"


def _hand_over_printed(
    db: Session, metrics: Sequence[MetricIngest], printed_sessions: Collection[int]
) -> None:
    """Delete the printed points (with their summaries and source) of metrics that now come
    from ``report()`` or a captured file, for sessions that capture printed output."""
    incoming = {
        (item.session_id, name)
        for item in metrics
        if item.session_id in printed_sessions
        and not any(source.startswith(PRINTED_SOURCE) for source in (item.sources or {}).values())
        for name in item.batch.last_metrics
    }
    if not incoming:
        return
    source = MetricSource.__table__.c  # type: ignore[attr-defined]
    printed = set(
        db.execute(
            sql_select(source.session_id, source.name).where(
                source.session_id.in_({session_id for session_id, _ in incoming}),
                source.source.startswith(PRINTED_SOURCE),
            )
        ).all()
    )
    dropped: dict[int, int] = {}
    for session_id, name in sorted(incoming & {(row[0], row[1]) for row in printed}):
        result = db.execute(
            delete(MetricPoint).where(
                col(MetricPoint.session_id) == session_id,
                col(MetricPoint.name) == name,
                col(MetricPoint.line) < 0,
            )
        )
        dropped[session_id] = dropped.get(session_id, 0) + int(getattr(result, "rowcount", 0))
        for model in (MetricSummary, MetricBlock, MetricSource):
            db.execute(
                delete(model).where(
                    col(model.session_id) == session_id,
                    col(model.name) == name,
                )
            )
    for session_id, count in dropped.items():
        db.execute(
            update(SessionRecord)
            .where(col(SessionRecord.id) == session_id)
            .values(
                metric_count=case(
                    (col(SessionRecord.metric_count) > count, SessionRecord.metric_count - count),
                    else_=0,
                )
            )
        )


def owned_metric_names(
    catalog: Catalog, session_ids: Sequence[int], printed_prefix: str
) -> dict[int, set[str]]:
    """Per session, the metric names that ``report()`` or a captured file brings (every name
    with points whose source is not the printed output)."""
    if not session_ids:
        return {}
    found: dict[int, set[str]] = {}
    with catalog.session() as db:
        names = db.execute(
            sql_select(col(MetricSummary.session_id), col(MetricSummary.name)).where(
                col(MetricSummary.session_id).in_(list(session_ids))
            )
        ).all()
        printed = set(
            db.execute(
                sql_select(col(MetricSource.session_id), col(MetricSource.name)).where(
                    col(MetricSource.session_id).in_(list(session_ids)),
                    col(MetricSource.source).startswith(printed_prefix),
                )
            ).all()
        )
    for session_id, name in names:
        if (session_id, name) not in printed:
            found.setdefault(session_id, set()).add(name)
    return found


def _merge_blocks(
    into: dict[tuple[str, int], Summary], later: dict[tuple[str, int], Summary]
) -> None:
    """Fold the blocks of a later batch of the same session into ``into``."""
    for key, block in later.items():
        if key in into:
            into[key].merge(block)
        else:
            into[key] = block


def _move_cursors(db: Session, moves: Sequence[tuple[int, str, CursorState]], now: float) -> None:
    """Upsert the cursors in one statement (INSERT ... ON CONFLICT DO UPDATE)."""
    if not moves:
        return
    table = ScrapeCursor.__table__  # type: ignore[attr-defined]
    values = [
        {
            "session_id": session_id,
            "file": file,
            "offset": state.offset,
            "lines": state.lines,
            "malformed": state.malformed,
            "updated_at": now,
        }
        for session_id, file, state in moves
    ]
    dialect = db.connection().dialect.name
    statement: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(table)
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table)
    else:  # any other database: one row at a time, through the ORM
        for session_id, file, state in moves:
            move_cursor(db, session_id, file, state, now)
        return
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.session_id, table.c.file],
        set_={
            "offset": statement.excluded.offset,
            "lines": statement.excluded.lines,
            "malformed": statement.excluded.malformed,
            "updated_at": statement.excluded.updated_at,
        },
    )
    db.connection().execute(statement, values)


def _add_sources(db: Session, items: Sequence[MetricIngest]) -> None:
    if not items:
        return
    wanted = {
        (item.session_id, name): source
        for item in items
        for name, source in (item.sources or {}).items()
    }
    known = set(
        db.execute(
            sql_select(col(MetricSource.session_id), col(MetricSource.name)).where(
                col(MetricSource.session_id).in_({item.session_id for item in items})
            )
        ).all()
    )
    fresh = [
        {"session_id": session_id, "name": name, "source": source}
        for (session_id, name), source in wanted.items()
        if (session_id, name) not in known
    ]
    if fresh:
        db.execute(insert(MetricSource), fresh)


def _update_sessions(db: Session, items: Sequence[MetricIngest], now: float) -> None:
    """Last metrics, last step and counters of every session that got points: one read and
    one UPDATE executemany."""
    if not items:
        return
    merged: dict[int, MetricBatch] = {}
    for item in items:
        total = merged.setdefault(item.session_id, MetricBatch())
        total.last_metrics.update(item.batch.last_metrics)
        if item.batch.last_step is not None and (
            total.last_step is None or item.batch.last_step >= total.last_step
        ):
            total.last_step = item.batch.last_step
        total.lines += len(item.batch.points)  # used as the point count here
        total.malformed += item.batch.malformed
    table = SessionRecord.__table__  # type: ignore[attr-defined]
    current = {
        row.id: row
        for row in db.execute(
            sql_select(
                table.c.id,
                table.c.last_metrics_json,
                table.c.last_step,
                table.c.metric_count,
                table.c.malformed_lines,
            ).where(table.c.id.in_(list(merged)))
        )
    }
    updates = []
    for session_id, total in merged.items():
        row = current.get(session_id)
        if row is None:
            continue  # removed meanwhile: its points go with it
        metrics = json.loads(row.last_metrics_json or "{}")
        metrics.update(total.last_metrics)
        updates.append(
            {
                "k_id": session_id,
                "last_metrics_json": json.dumps(metrics, sort_keys=True),
                "last_step": total.last_step if total.last_step is not None else row.last_step,
                "metric_count": row.metric_count + total.lines,
                "malformed_lines": row.malformed_lines + total.malformed,
                "updated_at": now,
            }
        )
    if updates:
        db.connection().execute(
            update(table)
            .where(table.c.id == bindparam("k_id"))
            .values(
                {
                    name: bindparam(name)
                    for name in (
                        "last_metrics_json",
                        "last_step",
                        "metric_count",
                        "malformed_lines",
                        "updated_at",
                    )
                }
            ),
            updates,
        )


def touch_cursors(catalog: Catalog, session_ids: Sequence[int], file: str, now: float) -> None:
    """Record that ``file`` (a pseudo-file such as the discovery marker) of each session was
    looked at now: one statement for all of them."""
    if not session_ids:
        return
    with catalog.session() as db:
        stored = {
            (session_id, name): CursorState(offset, lines, malformed)
            for session_id, name, offset, lines, malformed in db.execute(
                sql_select(
                    col(ScrapeCursor.session_id),
                    col(ScrapeCursor.file),
                    col(ScrapeCursor.offset),
                    col(ScrapeCursor.lines),
                    col(ScrapeCursor.malformed),
                ).where(
                    col(ScrapeCursor.session_id).in_(list(session_ids)),
                    col(ScrapeCursor.file) == file,
                )
            ).all()
        }
        _move_cursors(
            db,
            [(sid, file, stored.get((sid, file), CursorState())) for sid in session_ids],
            now,
        )


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


def non_finite_count(catalog: Catalog, session_id: int) -> int:
    """Points whose value was NaN or ±inf (stored as gaps: NULL), of ``report()``'s and
    captured metrics alike."""
    with catalog.session() as db:
        return int(
            db.exec(
                select(func.count())
                .select_from(MetricPoint)
                .where(MetricPoint.session_id == session_id, col(MetricPoint.value).is_(None))
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
