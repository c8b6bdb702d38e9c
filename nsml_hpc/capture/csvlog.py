"""CSV metric logs (Lightning's ``CSVLogger`` ``metrics.csv``, Keras' ``CSVLogger``), read
from where the last sync stopped.

Lightning rewrites the whole file with a wider header when a new metric appears; the cursor
keeps the header and the number of data rows already taken, so a rewrite is read again from
the first row not yet ingested, never twice.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_DIGIT = re.compile(rb"[0-9]")
MAX_PROBLEMS = 10
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
    problems: list[str] = field(default_factory=list)  # named with their line numbers


def _number(text: str) -> float | bool | None:
    """A cell as a metric value; ``False`` for an empty or non-numeric cell."""
    if not text or text.isspace():
        return False
    try:
        value = float(text)
    except ValueError:
        return False
    return value if math.isfinite(value) else None


class _Columns:
    """Where the step, the time and the metrics are in one header."""

    def __init__(self, header: list[str]) -> None:
        self.names = header
        self.width = len(header)
        step = next((name for name in STEP_COLUMNS if name in header), None)
        when = next((name for name in TIME_COLUMNS if name in header), None)
        self.step = header.index(step) if step else None
        self.time = header.index(when) if when else None
        self.metrics = [
            (index, name)
            for index, name in enumerate(header)
            if index not in (self.step, self.time)
        ]


def _looks_like_a_header(cells: list[str]) -> bool:
    return bool(cells) and all(cell and _number(cell) is False for cell in cells)


def _note(result: CsvPoints, problem: str) -> None:
    """Keep the first MAX_PROBLEMS problems word for word; the counts say the rest."""
    if len(result.problems) < MAX_PROBLEMS:
        result.problems.append(problem)


def _lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Complete lines with the offset just past each; a partial last line is held back."""
    carry = b""
    consumed = 0
    for chunk in chunks:
        data = carry + chunk
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            yield consumed + end + 1, data[start:end]
            start = end + 1
        consumed += start
        carry = data[start:]


def read_csv_stream(
    chunks: Iterable[bytes], cursor: CsvCursor, *, max_new_bytes: int | None = None
) -> CsvPoints:
    """New points in a CSV log given as consecutive chunks of the WHOLE file from byte 0.

    Only complete lines count. Data rows up to ``cursor.rows`` were taken by an earlier read
    (also when the logger rewrote the file with a wider header, as Lightning does) and are
    only counted, not parsed. A row of the wrong width is malformed (counted, its line named);
    a row of names only where data was expected is a new header, and the rows after it are
    read with it. Memory stays bounded by one chunk plus the new points; at most
    ``max_new_bytes`` of new rows are parsed per call (the rest waits for the next one).
    """
    result = CsvPoints(cursor=cursor)
    columns: _Columns | None = None
    rows = 0
    new_bytes = 0
    line_number = 0
    offset = 0
    for end, raw in _lines(chunks):
        line_number += 1
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        if columns is None:
            columns = _Columns(next(csv.reader([line]), []))
            offset = end
            continue
        if rows < cursor.rows:  # taken by an earlier read: counted, not parsed
            offset = end
            if _DIGIT.search(raw) is None and _looks_like_a_header(next(csv.reader([line]), [])):
                columns = _Columns(next(csv.reader([line])))
                continue
            rows += 1
            continue
        if max_new_bytes is not None and new_bytes >= max_new_bytes:
            break
        new_bytes += len(raw) + 1
        cells = next(csv.reader([line]), [])
        offset = end
        if len(cells) != columns.width:
            if _looks_like_a_header(cells):
                columns = _Columns(cells)
                _note(result, f"header changed at line {line_number}")
                continue
            result.malformed += 1
            _note(result, f"line {line_number}: {len(cells)} cells, header has {columns.width}")
            rows += 1
            continue
        rows += 1
        step_value = _number(cells[columns.step]) if columns.step is not None else False
        step = int(step_value) if isinstance(step_value, float) else None
        when_value = _number(cells[columns.time]) if columns.time is not None else False
        when = when_value if isinstance(when_value, float) else None
        append = result.points.append
        for index, name in columns.metrics:
            number = _number(cells[index])
            if number is not False:
                append((step, when, name, number))
    header = ",".join(columns.names) if columns else ""
    result.cursor = CsvCursor(offset=offset, rows=max(rows, cursor.rows), header=header)
    return result


def read_csv_points(content: bytes, cursor: CsvCursor) -> CsvPoints:
    """:func:`read_csv_stream` over the whole file in one piece."""
    return read_csv_stream([content], cursor)
