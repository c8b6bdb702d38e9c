"""Metric histories: every stored point of some sessions, streamed in chunks.

One query (joined with the session names, in session then line order) read with a server
side cursor in chunks of :data:`CHUNK_ROWS`, so exporting a session of ten million points
never holds them all. Points a resumed job run redid are left out, as every reader does
(:func:`nsml_hpc.catalog.metrics.superseded`). ``export`` writes the chunks as CSV, JSON lines
or Parquet; the notebook API (:mod:`nsml_hpc.client`) turns them into DataFrames.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from sqlmodel import col, select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import superseded
from nsml_hpc.catalog.models import MetricPoint
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.catalog.summaries import metric_names
from nsml_hpc.errors import NotFoundError, SpecError
from nsml_hpc.suggest import did_you_mean

CHUNK_ROWS = 50_000
COLUMNS = ("session", "step", "time", "metric", "value")
FORMATS = ("csv", "jsonl", "parquet")
Point = tuple[str, int | None, float | None, str, float | None]


def _session_ids(catalog: Catalog, names: Sequence[str]) -> dict[int, str]:
    if not names:
        raise SpecError("name at least one session")
    found: dict[int, str] = {}
    for name in dict.fromkeys(names):
        record = get_session(catalog, name)  # NotFoundError with "did you mean"
        assert record.id is not None
        found[record.id] = record.name
    return found


def check_metrics(catalog: Catalog, ids: Sequence[int], metrics: Sequence[str]) -> None:
    """Every named metric must be one the sessions reported (did you mean ...)."""
    if not metrics:
        return
    known = metric_names(catalog, list(ids))
    for metric in metrics:
        if metric not in known:
            raise NotFoundError(f"no session here reported {metric!r}{did_you_mean(metric, known)}")


def iter_points(
    catalog: Catalog,
    names: Sequence[str],
    metrics: Sequence[str] = (),
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[list[Point]]:
    """Chunks of (session, step, time, metric, value), session by session in the order
    they were named, each in the order its points were reported. The names and metrics are
    checked here, before the first chunk is asked for, so a caller can write nothing (not
    even a header) when one is wrong."""
    ids = _session_ids(catalog, names)
    check_metrics(catalog, list(ids), metrics)
    return _chunks(catalog, ids, metrics, chunk_rows)


def _chunks(
    catalog: Catalog, ids: dict[int, str], metrics: Sequence[str], chunk_rows: int
) -> Iterator[list[Point]]:
    point = MetricPoint
    for session_id, name in ids.items():
        query = (
            select(point.step, point.time, point.name, point.value)
            .where(point.session_id == session_id, ~superseded())
            .order_by(col(point.line), col(point.id))
        )
        if metrics:
            query = query.where(col(point.name).in_(list(metrics)))
        with catalog.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(
                query
            )
            for rows in result.partitions(chunk_rows):
                yield [(name, step, when, metric, value) for step, when, metric, value in rows]


# --- writers ------------------------------------------------------------------------------


def _number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _write_csv(chunks: Iterator[list[Point]], out: BinaryIO) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    count = 0
    for chunk in chunks:
        writer.writerows(
            (
                name,
                "" if step is None else step,
                "" if when is None else repr(when),
                metric,
                "" if value is None else repr(value),
            )
            for name, step, when, metric, value in chunk
        )
        count += len(chunk)
    text.flush()
    text.detach()
    return count


def _write_jsonl(chunks: Iterator[list[Point]], out: BinaryIO) -> int:
    count = 0
    for chunk in chunks:
        out.write(
            "".join(
                json.dumps(
                    {
                        "session": name,
                        "step": step,
                        "time": _number(when),
                        "metric": metric,
                        "value": _number(value),
                    },
                    ensure_ascii=False,
                )
                + "\n"
                for name, step, when, metric, value in chunk
            ).encode("utf-8")
        )
        count += len(chunk)
    return count


def _write_parquet(chunks: Iterator[list[Point]], path: Path) -> int:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise SpecError("--format parquet needs pyarrow: pip install 'nsml-hpc[parquet]'") from None
    schema = pyarrow.schema(
        [
            ("session", pyarrow.string()),
            ("step", pyarrow.int64()),
            ("time", pyarrow.float64()),
            ("metric", pyarrow.string()),
            ("value", pyarrow.float64()),
        ]
    )
    count = 0
    with pyarrow.parquet.ParquetWriter(str(path), schema) as writer:
        for chunk in chunks:
            columns: list[tuple[Any, ...]] = (
                list(zip(*chunk, strict=True)) if chunk else [() for _ in COLUMNS]
            )
            table = pyarrow.Table.from_arrays(
                [
                    pyarrow.array(list(column), type=field.type)
                    for column, field in zip(columns, schema, strict=True)
                ],
                schema=schema,
            )
            writer.write_table(table)  # one row group per chunk: memory stays one chunk
            count += len(chunk)
    return count


def export_points(
    catalog: Catalog,
    names: Sequence[str],
    fmt: str,
    destination: Path | None,
    *,
    metrics: Sequence[str] = (),
    force: bool = False,
    stdout: BinaryIO | None = None,
) -> int:
    """Write the points of ``names`` to ``destination`` (or ``stdout``; not for parquet) as
    ``fmt``; returns how many. A file is written beside its destination and renamed into
    place at the end, so a failed export leaves nothing; an existing destination is refused
    unless ``force``."""
    if fmt not in FORMATS:
        raise SpecError(
            f"unknown format {fmt!r}{did_you_mean(fmt, FORMATS)}; use {', '.join(FORMATS)}"
        )
    if destination is None:
        if fmt == "parquet":
            raise SpecError("--format parquet writes a file: give -o PATH")
        assert stdout is not None
        chunks = iter_points(catalog, names, metrics)  # checks the names before the header
        return _write_csv(chunks, stdout) if fmt == "csv" else _write_jsonl(chunks, stdout)
    destination = destination.expanduser()
    if (destination.exists() or destination.is_symlink()) and not force:
        raise SpecError(f"{destination} exists; pass --force to replace it")
    if destination.is_dir():
        raise SpecError(f"{destination} is a folder; name a file")
    if not destination.parent.is_dir():
        raise SpecError(f"{destination.parent} is not a folder")
    chunks = iter_points(catalog, names, metrics)  # checks the names before a file exists
    temp = destination.parent / f".{destination.name}.nsml-export-{os.getpid()}"
    try:
        if fmt == "parquet":
            count = _write_parquet(chunks, temp)
        else:
            with temp.open("wb") as out:
                count = _write_csv(chunks, out) if fmt == "csv" else _write_jsonl(chunks, out)
        temp.replace(destination)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return count


def history_columns(
    catalog: Catalog, names: Sequence[str], metrics: Sequence[str] = ()
) -> dict[str, list[Any]]:
    """All points of ``names`` as columns (``COLUMNS``), for a DataFrame."""
    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for chunk in iter_points(catalog, names, metrics):
        for row in chunk:
            for key, value in zip(COLUMNS, row, strict=True):
                columns[key].append(value)
    return columns


__all__ = [
    "CHUNK_ROWS",
    "COLUMNS",
    "FORMATS",
    "export_points",
    "history_columns",
    "iter_points",
]
