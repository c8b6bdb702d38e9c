"""Incremental reading of the run directory's JSON-lines files (pure: bytes in, rows out).

Only complete lines are taken: a line the job is still writing stays for the next sync, and
the returned offset points just past the last newline consumed. A line that is not a JSON
object is counted as malformed and skipped, never fatal.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_READ_BYTES = 64 * 1024 * 1024  # per file per sync; the rest waits for the next one
RESERVED_KEYS = frozenset({"step", "time"})


@dataclass
class MetricBatch:
    """Metric points parsed from a run of complete lines."""

    points: list[dict[str, Any]] = field(default_factory=list)
    lines: int = 0
    malformed: int = 0
    last_step: int | None = None
    last_metrics: dict[str, float | None] = field(default_factory=dict)


@dataclass
class EventBatch:
    events: list[dict[str, Any]] = field(default_factory=list)
    lines: int = 0
    malformed: int = 0


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
    end = chunk.rfind(b"\n")
    if end < 0:
        return b"", offset
    return chunk[: end + 1], offset + end + 1


def _number(value: Any) -> float | None:
    """A metric value as float; ``None`` for NaN/inf (kept as a gap, not dropped)."""
    number = float(value)
    return number if math.isfinite(number) else None


def parse_metric_lines(chunk: bytes, first_line: int, session_id: int) -> MetricBatch:
    """Rows for ``metric_point`` from complete ``metrics.jsonl`` lines."""
    batch = MetricBatch()
    points = batch.points
    for index, raw in enumerate(chunk.splitlines()):
        batch.lines += 1
        line_no = first_line + index
        try:
            record = json.loads(raw)
        except ValueError:
            batch.malformed += 1
            continue
        if not isinstance(record, dict):
            batch.malformed += 1
            continue
        step = record.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            step = None
        when = record.get("time")
        when = float(when) if isinstance(when, int | float) and not isinstance(when, bool) else None
        for name, value in record.items():
            if name in RESERVED_KEYS or isinstance(value, bool):
                continue
            if not isinstance(value, int | float):
                continue  # text fields (e.g. a phase label) are not metric values
            number = _number(value)
            points.append(
                {
                    "session_id": session_id,
                    "line": line_no,
                    "step": step,
                    "time": when,
                    "name": name,
                    "value": number,
                }
            )
            batch.last_metrics[name] = number
        if step is not None:
            batch.last_step = step
    return batch


def parse_event_lines(chunk: bytes, session_id: int) -> EventBatch:
    """Rows for ``event`` from complete ``events.jsonl`` lines."""
    batch = EventBatch()
    for raw in chunk.splitlines():
        batch.lines += 1
        try:
            record = json.loads(raw)
        except ValueError:
            batch.malformed += 1
            continue
        if not isinstance(record, dict) or not isinstance(record.get("event"), str):
            batch.malformed += 1
            continue
        at = record.get("time")
        job_id = record.get("job_id")
        data = {key: value for key, value in record.items() if key not in ("event", "time")}
        batch.events.append(
            {
                "session_id": session_id,
                "at": float(at) if isinstance(at, int | float) else None,
                "kind": record["event"][:64],
                "job_id": str(job_id)[:64] if job_id is not None else None,
                "data_json": json.dumps(data, sort_keys=True),
            }
        )
    return batch
