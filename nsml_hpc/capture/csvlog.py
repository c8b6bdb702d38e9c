"""CSV metric logs (Lightning's ``CSVLogger`` ``metrics.csv``, Keras' ``CSVLogger``), read
from where the last sync stopped.

Lightning rewrites the whole file with a wider header when a new metric appears; the cursor
keeps the header and the number of data rows already taken, so a rewrite is read again from
the first row not yet ingested, never twice.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

STEP_COLUMNS = ("step", "global_step", "epoch")
TIME_COLUMNS = ("time", "wall_time", "timestamp", "created_at")


@dataclass(frozen=True)
class CsvCursor:
    offset: int = 0
    rows: int = 0  # data rows ingested
    header: str = ""


@dataclass
class CsvPoints:
    points: list[tuple[int | None, float | None, str, float | None]] = field(default_factory=list)
    cursor: CsvCursor = field(default_factory=CsvCursor)
    malformed: int = 0


def _number(text: str) -> float | bool | None:
    """A cell as a metric value; ``False`` for an empty or non-numeric cell."""
    if not text.strip():
        return False
    try:
        value = float(text)
    except ValueError:
        return False
    return value if math.isfinite(value) else None


def read_csv_points(content: bytes, cursor: CsvCursor) -> CsvPoints:
    """New points in ``content`` (the WHOLE file, read when its size changed).

    Only complete lines count. If the header is what the cursor saw, rows after
    ``cursor.rows`` are new; if the header changed (a rewrite), likewise, counted in the
    rewritten file.
    """
    end = content.rfind(b"\n")
    if end < 0:
        return CsvPoints(cursor=cursor)
    text = content[: end + 1].decode("utf-8", errors="replace")
    lines = text.splitlines()
    header_line, rows = lines[0], lines[1:]
    header = next(csv.reader([header_line]))
    taken = max(len(rows), cursor.rows)  # a shorter rewrite never makes rows count twice
    result = CsvPoints(cursor=CsvCursor(offset=end + 1, rows=taken, header=header_line))
    step_column = next((name for name in STEP_COLUMNS if name in header), None)
    time_column = next((name for name in TIME_COLUMNS if name in header), None)
    start = cursor.rows if cursor.rows <= len(rows) else len(rows)
    for cells in csv.reader(io.StringIO("\n".join(rows[start:]))):
        if len(cells) != len(header):
            result.malformed += 1
            continue
        row = dict(zip(header, cells, strict=True))
        step_value = _number(row.get(step_column, "")) if step_column else False
        step = int(step_value) if isinstance(step_value, float) else None
        when_value = _number(row.get(time_column, "")) if time_column else False
        when = when_value if isinstance(when_value, float) else None
        for name, cell in row.items():
            if name in (step_column, time_column):
                continue
            number = _number(cell)
            if number is not False:
                result.points.append((step, when, name, number))
    return result
