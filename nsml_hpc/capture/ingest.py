"""Sync's side of zero-code capture: find TensorBoard/CSV logs in a session's run directory
(at most every DISCOVERY_INTERVAL seconds per live session) and ingest what is new in them,
each file with its own cursor moved in the same transaction as its points."""

from __future__ import annotations

from dataclasses import dataclass, field

from nsml_hpc.backends.files import RunFiles
from nsml_hpc.capture.csvlog import CsvCursor, read_csv_points
from nsml_hpc.capture.discover import discover
from nsml_hpc.capture.tfevents import TensorBoardUnavailable, read_event_points
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import CursorState, store_metric_batch, touch_cursor
from nsml_hpc.runfiles.scrape import MAX_READ_BYTES, MetricBatch

DISCOVERY_FILE = "<discover>"
DISCOVERY_INTERVAL = 30.0
END_RESOLUTION_SECONDS = 2.0
CAPTURED_LINE = -1  # metric_point.line of every captured point
CAPTURE_PREFIX = "code/"


@dataclass
class CaptureReport:
    points: int = 0
    malformed: int = 0
    warnings: list[str] = field(default_factory=list)


def _batch(
    session_id: int, points: list[tuple[int | None, float | None, str, float | None]]
) -> MetricBatch:
    batch = MetricBatch()
    for step, when, name, value in points:
        batch.points.append((session_id, CAPTURED_LINE, step, when, name, value))
        batch.last_metrics[name] = value
        if step is not None and (batch.last_step is None or step >= batch.last_step):
            batch.last_step = step
    return batch


def captured_files(cursors: dict[tuple[int, str], CursorState]) -> dict[int, list[str]]:
    """Captured files already known, per session (one pass over all cursors)."""
    found: dict[int, list[str]] = {}
    for session_id, file in cursors:
        if file.startswith(CAPTURE_PREFIX):
            found.setdefault(session_id, []).append(file)
    return found


def scrape_captured(
    catalog: Catalog,
    files: RunFiles,
    session_id: int,
    run_dir: str,
    cursors: dict[tuple[int, str], CursorState],
    known_files: list[str],
    discovered_at: float | None,
    now: float,
    *,
    ended_at: float | None = None,
) -> CaptureReport:
    """Ingest the session's captured logs; look for new ones when the last look is older than
    DISCOVERY_INTERVAL, or older than the session's end (one final look)."""
    report = CaptureReport()
    known = set(known_files)
    last = discovered_at
    due = (
        last is None
        or now - last >= DISCOVERY_INTERVAL
        # sacct's End has whole seconds: a look a moment before the real end can carry a
        # later time than the recorded end, so the final look allows for that.
        or (ended_at is not None and last <= ended_at + END_RESOLUTION_SECONDS)
    )
    if due:
        known.update(found.relative for found in discover(run_dir, files=files))
        touch_cursor(catalog, session_id, DISCOVERY_FILE, now)
    for relative in sorted(known):
        cursor = cursors.get((session_id, relative), CursorState())
        path = f"{run_dir}/{relative}"
        size = files.size(path)
        if size is None or size == cursor.offset:
            continue
        try:
            if "tfevents" in relative:
                _ingest_events(
                    catalog, files, session_id, relative, path, cursor, size, now, report
                )
            else:
                _ingest_csv(catalog, files, session_id, relative, path, cursor, size, now, report)
        except TensorBoardUnavailable as exc:
            report.warnings.append(f"{relative}: {exc}")
    return report


def _ingest_events(
    catalog: Catalog,
    files: RunFiles,
    session_id: int,
    relative: str,
    path: str,
    cursor: CursorState,
    size: int,
    now: float,
    report: CaptureReport,
) -> None:
    if size < cursor.offset:
        return  # replaced by a shorter file: its points are already in
    data = files.read_from(path, cursor.offset, MAX_READ_BYTES)
    result = read_event_points(data, cursor.offset)
    batch = _batch(session_id, result.points)
    batch.lines = result.records
    new_offset = result.new_offset
    if result.corrupt:
        report.warnings.append(f"{relative}: {result.corrupt}; the rest of the file is skipped")
        batch.malformed = 1
        new_offset = size
    _store(catalog, session_id, relative, "tensorboard", batch, cursor, new_offset, now, report)


def _ingest_csv(
    catalog: Catalog,
    files: RunFiles,
    session_id: int,
    relative: str,
    path: str,
    cursor: CursorState,
    size: int,
    now: float,
    report: CaptureReport,
) -> None:
    content = files.read_from(path, 0, min(size, MAX_READ_BYTES))
    result = read_csv_points(content, CsvCursor(offset=cursor.offset, rows=cursor.lines))
    batch = _batch(session_id, result.points)
    batch.lines = result.cursor.rows - cursor.lines  # the cursor counts data rows taken
    batch.malformed = result.malformed
    _store(catalog, session_id, relative, "csv", batch, cursor, result.cursor.offset, now, report)


def _store(
    catalog: Catalog,
    session_id: int,
    relative: str,
    kind: str,
    batch: MetricBatch,
    cursor: CursorState,
    new_offset: int,
    now: float,
    report: CaptureReport,
) -> None:
    """Store one captured file's new points with its cursor and their source, and count them."""
    if new_offset == cursor.offset and not batch.points:
        return
    store_metric_batch(
        catalog,
        session_id,
        batch,
        cursor,
        new_offset,
        now,
        file=relative,
        sources={name: f"{kind}:{relative}" for name in batch.last_metrics},
    )
    report.points += len(batch.points)
    report.malformed += batch.malformed
