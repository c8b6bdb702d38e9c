"""Incremental reading of the run directory's JSON-lines files (pure: bytes in, rows out).

Only complete lines are taken: a line the job is still writing stays for the next sync, and
the returned offset points just past the last newline consumed. A line that is not a JSON
object is counted as malformed and skipped, never fatal. So is a metric or event name that a
terminal could act on (control characters, see :mod:`nsml_hpc.job.text`) or that is too long
to store: that name is refused (the line's other metrics are kept), the line counts as
malformed, and ``problems`` says which line (1-based) and why.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from nsml_hpc.job.layout import HEARTBEAT_EVENT
from nsml_hpc.job.text import name_problem
from nsml_hpc.runfiles.summary import Summary, summarize_points

MAX_READ_BYTES = 16 * 1024 * 1024  # per file and per batch of a sync: bounds memory (~100 MB)


# Column order of the tuples in ``MetricBatch.points`` (the metric_point insert uses it).
POINT_COLUMNS = ("session_id", "line", "step", "time", "name", "value")
MetricPointRow = tuple[int, int, int | None, float | None, str, float | None]


MAX_PROBLEMS = 20  # refused lines described per batch (all are counted)


@dataclass
class MetricBatch:
    """Metric points parsed from a run of complete lines, as ``POINT_COLUMNS`` tuples."""

    points: list[MetricPointRow] = field(default_factory=list)
    lines: int = 0
    malformed: int = 0
    last_step: int | None = None
    last_metrics: dict[str, float | None] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, why), 1-based
    # per (metric, block of lines) summaries, made with the points; None (a captured batch):
    # the store summarizes the points itself
    blocks: dict[tuple[str, int], Summary] | None = None


@dataclass
class EventBatch:
    events: list[dict[str, Any]] = field(default_factory=list)
    lines: int = 0
    malformed: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)


def _note(problems: list[tuple[int, str]], line: int, why: str) -> None:
    if len(problems) < MAX_PROBLEMS:
        problems.append((line, why))


def read_new_lines(path: Path, offset: int, limit: int = MAX_READ_BYTES) -> tuple[bytes, int]:
    """The complete lines of ``path`` after byte ``offset``, and the offset after them.

    A file that shrank below ``offset`` (truncated or replaced) yields nothing: its points
    were already ingested and re-reading would double them.
    """
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read(limit)
    except FileNotFoundError:
        return b"", offset
    return complete_lines(chunk, offset)


def complete_lines(chunk: bytes, offset: int) -> tuple[bytes, int]:
    """The complete lines of ``chunk`` (read at ``offset``) and the offset after them."""
    end = chunk.rfind(b"\n")
    if end < 0:
        return b"", offset
    return chunk[: end + 1], offset + end + 1


def _load(raw: bytes) -> Any:
    """orjson for speed; the stdlib for what only it reads (``NaN``/``Infinity`` literals,
    which ``json.dumps`` writes for non-finite floats)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def _finite_or_none(value: Any) -> float | None:
    """A JSON number as a finite float; ``None`` for anything else (bools, huge ints, NaN)."""
    kind = type(value)
    if kind is not int and kind is not float:
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _integral(value: Any) -> int | None:
    """A step written as a float with an integral value (``3.0``, numpy's habit) as an int;
    None for anything else."""
    if type(value) is float and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def parse_metric_lines(chunk: bytes, first_line: int, session_id: int) -> MetricBatch:
    """Rows for ``metric_point`` from complete ``metrics.jsonl`` lines.

    Numbers become points (NaN/inf as ``None``: a gap, not a dropped point, counted by
    ``show`` as non-finite values); text and bool fields are not metrics and are skipped; a
    line that is not a JSON object, or whose ``step`` is not an integer, is malformed.
    """
    batch = MetricBatch()
    add_point = batch.points.append  # bound once: this loop runs per point
    last_metrics = batch.last_metrics
    last_step: int | None = None
    malformed = 0
    isfinite = math.isfinite
    fast_loads, decode_error = orjson.loads, orjson.JSONDecodeError
    good_names: set[str] = set()  # names already checked (the check runs once per name)
    lines = chunk.splitlines()
    for line_no, raw in enumerate(lines, first_line):
        try:
            try:
                record = fast_loads(raw)
            except decode_error:
                record = json.loads(raw)  # NaN/Infinity literals that only the stdlib reads
        except ValueError:
            malformed += 1
            _note(batch.problems, line_no + 1, "not a JSON object")
            continue
        if type(record) is not dict:
            malformed += 1
            _note(batch.problems, line_no + 1, "not a JSON object")
            continue
        refused = False
        step = record.pop("step", None)
        if type(step) is not int and step is not None:
            step = _integral(step)
            if step is None:  # "step": "x", 1.5, true, NaN: the line's step is wrong
                malformed += 1
                continue
        if step is not None:
            last_step = step
        when = _finite_or_none(record.pop("time", None))
        for name, value in record.items():
            kind = type(value)
            if kind is float:
                number = value if isfinite(value) else None
            elif kind is int:
                number = _finite_or_none(value)
            else:
                continue  # text (a phase label), bool, lists: not metric values
            if name not in good_names:
                why = name_problem(name, "metric name")
                if why is not None:
                    if not refused:
                        _note(batch.problems, line_no + 1, f"{why}: refused")
                    refused = True
                    continue
                good_names.add(name)
            add_point((session_id, line_no, step, when, name, number))
            last_metrics[name] = number
        if refused:
            malformed += 1
    batch.blocks = summarize_points(batch.points)[1]  # the store keeps them with the points
    batch.lines = len(lines)
    batch.malformed = malformed
    batch.last_step = last_step
    return batch


def parse_event_lines(chunk: bytes, session_id: int, first_line: int = 0) -> EventBatch:
    """Rows for ``event`` from complete ``events.jsonl`` lines (``first_line``: how many
    lines of the file came before, for the line numbers of refused ones). The wrapper's
    heartbeat (``alive``) lines are read (the cursor moves past them: a sign of life) but
    not stored."""
    batch = EventBatch()
    for raw in chunk.splitlines():
        batch.lines += 1
        line = first_line + batch.lines
        try:
            record = _load(raw)
        except ValueError:
            batch.malformed += 1
            _note(batch.problems, line, "not a JSON object")
            continue
        if not isinstance(record, dict) or not isinstance(record.get("event"), str):
            batch.malformed += 1
            _note(batch.problems, line, 'not an event (no "event" name)')
            continue
        why = name_problem(record["event"], "event name")
        if why is not None:
            batch.malformed += 1
            _note(batch.problems, line, f"{why}: refused")
            continue
        if record["event"] == HEARTBEAT_EVENT:
            continue
        at = record.get("time")
        job_id = record.get("job_id")
        data = {key: value for key, value in record.items() if key not in ("event", "time")}
        batch.events.append(
            {
                "session_id": session_id,
                "at": _finite_or_none(at),
                "kind": record["event"][:64],
                "job_id": str(job_id)[:64] if job_id is not None else None,
                "data_json": json.dumps(data, sort_keys=True),
            }
        )
    return batch


def stored_event_fields(data_json: str | None) -> dict[str, Any]:
    """An event's stored fields (``data_json``, as :func:`scrape_events` wrote them) read
    back: a JSON object; anything else (a catalog edited by hand, a damaged row) is kept as
    ``{"unreadable": <the text>}`` so that ``show`` still shows the session."""
    try:
        data = json.loads(data_json or "{}")
    except ValueError:
        return {"unreadable": data_json}
    return data if isinstance(data, dict) else {"unreadable": data_json}
