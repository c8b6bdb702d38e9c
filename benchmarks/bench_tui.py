"""The TUI at scale: 10,000 sessions and 1,000,000+ metric points in the catalog.

Prints (no assertions; see benchmarks/README.md):

* first paint of the sessions screen: from creating the app to the first frame that shows
  table rows (headless, 160x50), against the stock DataTable filled with all 10,000 rows
  (the same columns) as the baseline, in the same run. Target: <= 1 s.
* drawing a 1,000,000-point curve: reading it from the catalog reduced to the plot's width
  (metric blocks) + plotext building the plot, against the same reduction done by the
  database over every point (GROUP BY) and reading all points. Target: <= 300 ms.
* idle CPU of an open TUI: process CPU time over 10 s with the real background sync running
  (nothing live, so Slurm is never asked) and the status line ticking. Target: <= 2 %.

    .venv/bin/python benchmarks/bench_tui.py [--sessions N] [--points N] [--idle-seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import CursorState, store_metric_batch
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.series import bucketed_series, metric_series
from nsml_hpc.catalog.summaries import update_summaries
from nsml_hpc.config.settings import Settings
from nsml_hpc.runfiles.scrape import MetricBatch, MetricPointRow
from nsml_hpc.workspace import Workspace

if TYPE_CHECKING:  # mypy checks the TUI as the package "tui"; it ships as nsml_hpc.tui
    from tui.app import NsmlApp
    from tui.sessions.table import SessionTable
else:
    from nsml_hpc.tui.app import NsmlApp
    from nsml_hpc.tui.sessions.table import SessionTable

BIG = "bench/1"


def build(catalog: Catalog, sessions: int, points: int) -> int:
    """Sessions (all finished), 3 points each, and one session with ``points`` points."""
    now = time.time()
    states = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"]
    rows = []
    for index in range(sessions):
        project = f"proj{index % 40}" if index else "bench"
        number = index // 40 + 1 if index else 1
        rows.append(
            (
                f"{project}/{number}",
                project,
                number,
                "alice",
                catalog.user,  # the owner: the user the benchmark runs as, whose ps lists them
                "local",
                states[index % 4],
                f"/runs/alice/{project}/{number}",
                json.dumps({"project": project, "script": "train.py", "args": []}),
                json.dumps({"lr": 0.1 * (index % 7 + 1)}),
                f"memo {index}" if index % 5 == 0 else "",
                index % 9,
                now - index * 60,
                now - index * 60 + 30,
                now - index * 60 + 3000,
                2970.0,
                now,
            )
        )
    with catalog.session() as db:
        connection = db.connection()
        connection.exec_driver_sql(
            "INSERT INTO session (name, project, number, user, owner, cluster, state, run_dir, "
            "spec_json, hyperparameters_json, memo, gpus, created_at, started_at, ended_at, "
            "elapsed_s, updated_at, last_metrics_json, metric_count, malformed_lines) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', 0, 0)",
            rows,
        )
    with catalog.session() as db:
        found = db.connection().exec_driver_sql("SELECT name, id FROM session").fetchall()
        ids: dict[str, int] = {name: session_id for name, session_id in found}
    small = [
        (session_id, line, line, None, "val_loss", 1.0 / (line + 1 + session_id % 13))
        for name, session_id in ids.items()
        if name != BIG
        for line in range(3)
    ]
    with catalog.session() as db:  # 3 points per session, in one transaction
        db.connection().exec_driver_sql(
            "INSERT INTO metric_point (session_id, line, step, time, name, value) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            small,
        )
        for start in range(0, len(small), 3):
            update_summaries(db, small[start][0], small[start : start + 3])
    big = ids[BIG]
    chunk = 200_000
    cursor = CursorState()
    for start in range(0, points, chunk):
        batch_points: list[MetricPointRow] = [
            (big, line, line, None, "val_loss", math.exp(-line / 2e5) + 0.02 * math.sin(line / 50))
            for line in range(start, min(start + chunk, points))
        ]
        batch = MetricBatch(points=batch_points, lines=len(batch_points))
        store_metric_batch(catalog, big, batch, cursor, cursor.offset + 1, now)
        cursor = CursorState(cursor.offset + 1, cursor.lines + len(batch_points), 0)
    return big


async def first_paint(workspace: Workspace) -> float:
    from nsml_hpc.sync.run import SyncReport

    started = time.perf_counter()
    app = NsmlApp(workspace, syncer=lambda _ws: SyncReport(), sync_interval=3600)
    async with app.run_test(size=(160, 50)) as pilot:
        while True:
            tables = app.screen.query(SessionTable)
            if tables and tables.first().loaded and tables.first().rows:
                break
            await pilot.pause(0.001)
        await pilot.pause()  # the frame with the rows
        return time.perf_counter() - started


async def stock_datatable_paint(workspace: Workspace) -> float:
    """Baseline: Textual's DataTable holding every session row."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from nsml_hpc.sessions.query import SessionQuery, count_sessions, session_page

    class Stock(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("name", "cluster", "state", "gpus", "elapsed", "last", "best", "memo")
            query = SessionQuery(key_metric="val_loss")
            total = count_sessions(workspace.catalog, query)
            rows = session_page(workspace.catalog, query, 0, total, now=time.time())
            table.add_rows(
                (
                    r.name,
                    r.cluster,
                    r.state_text,
                    r.gpus,
                    r.elapsed_s,
                    r.key_last,
                    r.key_best,
                    r.memo,
                )
                for r in rows
            )

    started = time.perf_counter()
    app = Stock()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        return time.perf_counter() - started


def plot_times(catalog: Catalog, session_id: int) -> dict[str, float]:
    from textual_plotext.plot import Plot

    width, height = 140, 30
    buckets = 2 * (width - 10)
    times: dict[str, float] = {}
    started = time.perf_counter()
    series = metric_series(catalog, session_id, "val_loss", buckets)
    times["read (blocks)"] = time.perf_counter() - started
    plot_started = time.perf_counter()
    plot = Plot()
    plot.plotsize(width, height)
    plot.plot(series.xs, series.ys, label="val_loss")
    plot.title(f"{series.points:,} points")
    plot.build()
    times["plotext build"] = time.perf_counter() - plot_started
    times["total"] = time.perf_counter() - started
    started = time.perf_counter()
    bucketed_series(catalog, session_id, "val_loss", buckets)
    times["baseline: GROUP BY in the database"] = time.perf_counter() - started
    started = time.perf_counter()
    with catalog.session() as db:
        db.connection().exec_driver_sql(
            "SELECT step, value FROM metric_point WHERE session_id = ? AND name = 'val_loss'",
            (session_id,),
        ).fetchall()
    times["baseline: read every point"] = time.perf_counter() - started
    times["points drawn"] = float(len(series.xs))
    return times


async def idle_cpu(workspace: Workspace, seconds: float) -> tuple[float, int]:
    app = NsmlApp(workspace)  # the real sync_now, at the configured interval
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause(2.0)  # first paint and first sync are not idle
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        return cpu / wall, app.sync_rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--build-only", metavar="DB", help="only build the catalog at this SQLite file, then stop"
    )
    args = parser.parse_args()
    if args.build_only:
        catalog = open_catalog(f"sqlite:///{args.build_only}")
        build(catalog, args.sessions, 1000)
        catalog.close()
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'catalog.db'}"
        catalog = open_catalog(url)
        started = time.perf_counter()
        big = build(catalog, args.sessions, args.points)
        total_points = args.points + 3 * (args.sessions - 1)
        print(
            f"catalog: {args.sessions:,} sessions, {total_points:,} metric points "
            f"(one session with {args.points:,}), built in {time.perf_counter() - started:.1f} s"
        )
        settings = Settings(catalog_url=url, run_root=Path(tmp) / "runs", poll_floor_seconds=5.0)
        workspace = Workspace(settings=settings, catalog=catalog)

        paints = [asyncio.run(first_paint(workspace)) for _ in range(args.repeat)]
        stock = [asyncio.run(stock_datatable_paint(workspace)) for _ in range(args.repeat)]
        ours, theirs = statistics.median(paints), statistics.median(stock)
        print("\nfirst paint of the sessions screen (median of", args.repeat, "runs)")
        print(
            f"  nsml-hpc virtual table   {ours * 1000:8.0f} ms   runs: "
            + ", ".join(f"{p * 1000:.0f}" for p in paints)
        )
        print(
            f"  stock DataTable, all rows {theirs * 1000:7.0f} ms   runs: "
            + ", ".join(f"{p * 1000:.0f}" for p in stock)
        )
        print(
            f"  ratio {ours / theirs:.2f} of the baseline; target <= 1000 ms: "
            + ("MEETS" if ours <= 1.0 else "MISSES")
        )

        runs = [plot_times(catalog, big) for _ in range(args.repeat)]
        print(f"\ndrawing the {args.points:,}-point curve (median of {args.repeat} runs)")
        for key in runs[0]:
            value = statistics.median(run[key] for run in runs)
            if key == "points drawn":
                print(f"  {key:<36} {value:8.0f}")
            else:
                print(f"  {key:<36} {value * 1000:8.1f} ms")
        total = statistics.median(run["total"] for run in runs)
        print(f"  target <= 300 ms: {'MEETS' if total <= 0.3 else 'MISSES'}")

        share, rounds = asyncio.run(idle_cpu(workspace, args.idle_seconds))
        print(
            f"\nidle CPU of an open TUI over {args.idle_seconds:.0f} s (real sync, "
            f"{rounds} rounds, status line ticking)"
        )
        print(
            f"  {share * 100:.2f} % of one core; target <= 2 %: "
            + ("MEETS" if share <= 0.02 else "MISSES")
        )
        workspace.close()


if __name__ == "__main__":
    main()
