"""Ingest rate of metric points: nsml-hpc's sync path against raw SQLite.

What is timed (each repeated REPEATS times on a fresh catalog file; the best run is reported):

* nsml-hpc: ``parse_metric_lines`` on a metrics.jsonl written like ``nsml_hpc.report`` writes
  it, then ``store_metric_batch`` into a fresh SQLite catalog opened with ``open_catalog`` --
  the very calls ``nsml_hpc.sync.run._scrape`` makes for one changed file.
* raw SQLite: stdlib ``sqlite3`` ``executemany`` of the same rows, pre-built as tuples (no
  parsing), into an identical ``metric_point`` table (the schema is created by ``open_catalog``
  on a second file, so columns, indexes and foreign keys are the same) in one transaction with
  the same PRAGMAs (WAL, synchronous=NORMAL, foreign_keys=ON).

Target: nsml-hpc (parse + insert) >= 80 % of the raw insert rate.

Run: ``.venv/bin/python benchmarks/bench_ingest.py [--lines 50000]``
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from nsml_hpc.catalog import open_catalog
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import CursorState, load_cursors, store_metric_batch
from nsml_hpc.catalog.sessions import mark_submitted, reserve_session
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.runfiles.scrape import parse_metric_lines, read_new_lines

REPEATS = 3
TARGET_RATIO = 0.80
METRIC_NAMES = ("loss", "acc", "val_loss", "lr")


def write_metrics_file(path: Path, lines: int) -> int:
    """A metrics.jsonl as ``report(step=N, loss=.., acc=.., val_loss=.., lr=..)`` writes it."""
    rng = random.Random(1234)
    start = 1_700_000_000.0
    with path.open("w", encoding="utf-8") as out:
        for step in range(lines):
            line = {
                "step": step,
                "time": start + step * 0.37,
                "loss": 2.3 * (0.9995**step) + rng.random() * 0.01,
                "acc": min(1.0, 0.1 + step / lines + rng.random() * 0.01),
                "val_loss": 2.4 * (0.9995**step) + rng.random() * 0.02,
                "lr": 1e-3 * (0.5 ** (step // 10_000)),
            }
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
    return lines * len(METRIC_NAMES)


def new_catalog(path: Path) -> tuple[Catalog, int]:
    """A fresh catalog with one SUBMITTED session made the way ``submit`` makes it."""
    catalog = open_catalog(f"sqlite:///{path}")
    spec = SessionSpec(project="bench", script="train.py", cluster="bench")
    record = reserve_session(
        catalog,
        spec=spec,
        user="bench",
        run_dir_for=lambda n: str(path.parent / "runs" / str(n)),
        is_free=lambda _n: True,
        now=time.time(),
    )
    assert record.id is not None
    mark_submitted(catalog, record.id, job_id="1", cluster="bench", now=time.time())
    return catalog, record.id


def time_nsml(workdir: Path, metrics: Path, run: int) -> tuple[float, float, int]:
    """(parse seconds, store seconds, points) for one parse + store on a fresh catalog."""
    catalog, session_id = new_catalog(workdir / f"nsml-{run}.db")
    try:
        cursor = load_cursors(catalog, [session_id]).get(
            (session_id, "metrics.jsonl"), CursorState()
        )
        t0 = time.perf_counter()
        chunk, new_offset = read_new_lines(metrics, cursor.offset)
        batch = parse_metric_lines(chunk, cursor.lines, session_id)
        t1 = time.perf_counter()
        store_metric_batch(catalog, session_id, batch, cursor, new_offset, time.time())
        t2 = time.perf_counter()
        points = len(batch.points)
    finally:
        catalog.close()
    return t1 - t0, t2 - t1, points


def build_raw_rows(metrics: Path, session_id: int) -> list[tuple[object, ...]]:
    """The same rows as tuples, built before timing (the raw side does no parsing)."""
    rows: list[tuple[object, ...]] = []
    with metrics.open("rb") as handle:
        for line_no, raw in enumerate(handle):
            record = json.loads(raw)
            for name in METRIC_NAMES:
                rows.append(
                    (session_id, line_no, record["step"], record["time"], name, record[name])
                )
    return rows


def time_raw(workdir: Path, rows: list[tuple[object, ...]], run: int) -> float:
    """Seconds for one executemany of ``rows`` into a fresh copy of the catalog schema."""
    path = workdir / f"raw-{run}.db"
    catalog, session_id = new_catalog(path)  # same DDL (columns, indexes, FKs) and a session row
    catalog.close()
    assert all(row[0] == session_id for row in rows[:1])
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        sql = (
            "INSERT INTO metric_point (session_id, line, step, time, name, value) "
            "VALUES (?, ?, ?, ?, ?, ?)"
        )
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - t0
        (count,) = conn.execute("SELECT count(*) FROM metric_point").fetchone()
        assert count == len(rows), (count, len(rows))
    finally:
        conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=50_000, help="metrics.jsonl lines")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="nsml-bench-ingest-"))
    try:
        metrics = workdir / "metrics.jsonl"
        expected = write_metrics_file(metrics, args.lines)
        size_mb = metrics.stat().st_size / 1e6
        print(f"metrics.jsonl: {args.lines:,} lines, {expected:,} points, {size_mb:.1f} MB")
        print(f"each figure: best of {REPEATS} runs, each on a fresh SQLite catalog file")
        print()

        rows = build_raw_rows(metrics, session_id=1)
        assert len(rows) == expected
        # Interleaved (nsml, raw, nsml, raw, ...) so that a noisy neighbour hits both sides.
        nsml_runs: list[tuple[float, float, int]] = []
        raw_runs: list[float] = []
        for run in range(REPEATS):
            nsml_runs.append(time_nsml(workdir, metrics, run))
            raw_runs.append(time_raw(workdir, rows, run))
        for _, _, points in nsml_runs:
            assert points == expected, (points, expected)
        best_total = min(p + s for p, s, _ in nsml_runs)
        best_parse = min(p for p, _, _ in nsml_runs)
        best_store = min(s for _, s, _ in nsml_runs)
        raw_best = min(raw_runs)

        nsml_rate = expected / best_total
        raw_rate = expected / raw_best
        ratio = nsml_rate / raw_rate
        print("nsml-hpc   read+parse_metric_lines + store_metric_batch (sync's path)")
        print(f"  total      {best_total * 1000:8.1f} ms   {nsml_rate:12,.0f} points/s")
        print(f"    parse    {best_parse * 1000:8.1f} ms   {expected / best_parse:12,.0f} points/s")
        print(f"    store    {best_store * 1000:8.1f} ms   {expected / best_store:12,.0f} points/s")
        runs = ", ".join(f"{(p + s) * 1000:.0f}" for p, s, _ in nsml_runs)
        print(f"    all runs (ms): {runs}")
        print("raw sqlite3 executemany of pre-built tuples, one transaction")
        print(f"  insert     {raw_best * 1000:8.1f} ms   {raw_rate:12,.0f} points/s")
        print(f"    all runs (ms): {', '.join(f'{t * 1000:.0f}' for t in raw_runs)}")
        print()
        verdict = "MEETS" if ratio >= TARGET_RATIO else "MISSES"
        print(f"ratio nsml-hpc / raw = {ratio:.1%}   (target >= {TARGET_RATIO:.0%}: {verdict})")
        print(
            f"store-only ratio     = {(expected / best_store) / raw_rate:.1%}"
            "   (insert path alone, parse excluded)"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
