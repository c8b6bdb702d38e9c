"""Sync's side of zero-code capture: find TensorBoard/CSV logs in a session's run directory
(at most every DISCOVERY_INTERVAL seconds per live session) and ingest what is new in them,
each file with its own cursor moved in the same transaction as its points.

A captured file whose name, or a metric (tag, column) whose name, holds control characters or
is too long is refused (:func:`nsml_hpc.job.text.name_problem`): the file is not read, the
metric's points are not stored, and the refusal is a warning and a stored ingest problem."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from nsml_hpc.backends.files import RunFiles
from nsml_hpc.capture.csvlog import CsvCursor, read_csv_stream
from nsml_hpc.capture.discover import FoundFile, walk
from nsml_hpc.capture.tfevents import read_event_points
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import CursorState, store_metric_batch, store_problems, touch_cursors
from nsml_hpc.errors import TensorBoardUnavailable
from nsml_hpc.job.layout import CODE_DIR
from nsml_hpc.job.text import name_problem, printable
from nsml_hpc.runfiles.scrape import MAX_READ_BYTES, MetricBatch

DISCOVERY_FILE = "<discover>"
DISCOVERY_INTERVAL = 30.0
END_RESOLUTION_SECONDS = 2.0
CAPTURED_LINE = -1  # metric_point.line of every captured point
CAPTURE_PREFIX = f"{CODE_DIR}/"  # captured files live in the code folder (cursor keys)
CSV_CHUNK_BYTES = 4 * 1024 * 1024  # a CSV log is read in pieces of this size: bounded memory


@dataclass
class CaptureReport:
    points: int = 0
    malformed: int = 0
    warnings: list[str] = field(default_factory=list)
    looked: bool = False  # discovery ran: the caller records it (one statement for all sessions)
    checkpoints: list[FoundFile] | None = None  # what the look found (for the snapshot catalog)
    printed: bool = False  # the session captures printed metrics: hand these names over
    next_look_at: float = 0.0  # the next look for new logs is due then (see look_due_at)


def _batch(
    session_id: int, points: list[tuple[int | None, float | None, str, float | None]]
) -> MetricBatch:
    batch = MetricBatch()
    checked: dict[str, str | None] = {}
    for step, when, name, value in points:
        if name not in checked:
            checked[name] = name_problem(name, "metric name")
            if checked[name] is not None:
                batch.malformed += 1
                batch.problems.append((0, f"{checked[name]}: refused"))
        if checked[name] is not None:
            continue
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


def look_due_at(last: float | None, ended_at: float | None) -> float:
    """When the next look for new captured logs is due after one at ``last`` (0: at once):
    every DISCOVERY_INTERVAL, and once more after the session's end."""
    if last is None:
        return 0.0
    # sacct's End has whole seconds: a look a moment before the real end can carry a later
    # time than the recorded end, so the final look allows for that.
    if ended_at is not None and last <= ended_at + END_RESOLUTION_SECONDS:
        return 0.0
    return last + DISCOVERY_INTERVAL


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
    printed_sessions: Collection[int] = (),
) -> CaptureReport:
    """Ingest the session's captured logs; look for new ones when the last look is older than
    DISCOVERY_INTERVAL, or older than the session's end (one final look). A look is reported
    in ``looked``: the caller records it with :func:`~nsml_hpc.catalog.metrics.touch_cursors`
    for all sessions at once (a look that is not recorded is only made again)."""
    report = CaptureReport(printed=session_id in printed_sessions)
    known = set(known_files)
    due = now >= look_due_at(discovered_at, ended_at)
    report.next_look_at = look_due_at(now if due else discovered_at, ended_at)
    if due:
        walked = walk(run_dir, files=files)
        report.checkpoints = walked.checkpoints
        for found in walked.logs:
            why = name_problem(found.relative, "captured file name")
            if why is None:
                known.add(found.relative)
            elif _marker(found.relative) not in refused_before(cursors, session_id):
                report.warnings.append(f"{why}: not read")
                _refuse_file(catalog, session_id, found.relative, why, now)
        report.looked = True
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


REFUSED_PREFIX = "<refused>"  # pseudo-cursor of a refused file: warned about once


def _marker(relative: str) -> str:
    return (REFUSED_PREFIX + printable(relative))[:200]


def refused_before(cursors: dict[tuple[int, str], CursorState], session_id: int) -> set[str]:
    """Pseudo-cursors of the captured files already refused."""
    return {file for sid, file in cursors if sid == session_id and file.startswith(REFUSED_PREFIX)}


def _refuse_file(catalog: Catalog, session_id: int, relative: str, why: str, now: float) -> None:
    """Remember a refused file (a pseudo-cursor) and why, once."""
    with catalog.session() as db:
        store_problems(db, session_id, relative, [(0, f"{why}: not read")], now)
    touch_cursors(catalog, [session_id], _marker(relative), now)


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
    batch.malformed = result.malformed
    for problem in result.problems:
        report.warnings.append(f"{relative}: {problem}")
    _store(
        catalog, session_id, relative, "tensorboard", batch, cursor, result.new_offset, now, report
    )


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
    chunks = (
        files.read_from(path, start, min(CSV_CHUNK_BYTES, size - start))
        for start in range(0, size, CSV_CHUNK_BYTES)
    )
    result = read_csv_stream(
        chunks, CsvCursor(offset=cursor.offset, rows=cursor.lines), max_new_bytes=MAX_READ_BYTES
    )
    for problem in result.problems:
        report.warnings.append(f"{relative}: {problem}")
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
        printed_sessions=(session_id,) if report.printed else (),
    )
    report.points += len(batch.points)
    report.malformed += batch.malformed
