"""Zero-code capture rate: TensorBoard event files and Lightning CSV logs against
``metrics.jsonl``, the same points through each format's real sync path, in one run.

Each format holds the same series (``--steps`` steps x 4 metrics); each is ingested into a
fresh SQLite catalog by the code sync runs for it:

* ``metrics.jsonl``: ``read_new_lines`` + ``parse_metric_lines`` + ``store_metric_batch``;
* TensorBoard (written by tensorboardX) and a Lightning-style ``metrics.csv``:
  ``capture.ingest.scrape_captured`` through the local files seam (read, CRC-check every record
  / parse every row, store with the file's cursor).

Runs are interleaved (jsonl, tensorboard, csv, jsonl, ...) and the best of ``--repeats`` is kept
for each, so a noisy neighbour hits all formats alike. Target: each capture format >= 50 % of
the jsonl rate in points/s. Figures only; nothing here asserts a time.

Run: ``.venv/bin/python benchmarks/bench_capture.py [--steps 50000]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.capture.ingest import scrape_captured
from nsml_hpc.catalog import open_catalog
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import CursorState, store_metric_batch
from nsml_hpc.catalog.sessions import mark_submitted, reserve_session
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.runfiles.scrape import parse_metric_lines, read_new_lines

METRICS = ("loss", "acc", "val_loss", "lr")
TARGET = 0.50


def value(name: str, step: int) -> float:
    return {"loss": 2.0 / (step + 1), "acc": step / (step + 10), "val_loss": 2.1 / (step + 1)}.get(
        name, 1e-3
    )


def write_inputs(folder: Path, steps: int) -> dict[str, Path]:
    from tensorboardX import SummaryWriter

    jsonl = folder / "metrics.jsonl"
    with jsonl.open("w") as out:
        for step in range(steps):
            record = {"step": step, "time": 1.7e9 + step}
            record.update({name: value(name, step) for name in METRICS})
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
    tb_dir = folder / "code" / "runs"
    writer = SummaryWriter(str(tb_dir), flush_secs=3600, max_queue=100_000)
    for step in range(steps):
        for name in METRICS:
            writer.add_scalar(name, value(name, step), step)
    writer.close()
    csv = folder / "code" / "lightning_logs" / "version_0" / "metrics.csv"
    csv.parent.mkdir(parents=True)
    with csv.open("w") as out:
        out.write("step,epoch," + ",".join(METRICS) + "\n")
        for step in range(steps):
            cells = [str(step), str(step // 100)] + [repr(value(name, step)) for name in METRICS]
            out.write(",".join(cells) + "\n")
    return {
        "jsonl": jsonl,
        "tensorboard": next(tb_dir.glob("events.out.tfevents.*")),
        "csv": csv,
    }


def fresh_catalog(path: Path, run_dir: Path) -> tuple[Catalog, int]:
    catalog = open_catalog(f"sqlite:///{path}")
    record = reserve_session(
        catalog,
        spec=SessionSpec(project="bench", script="train.py", cluster="bench"),
        user="bench",
        run_dir_for=lambda _n: str(run_dir),
        is_free=lambda _n: True,
        now=time.time(),
    )
    assert record.id is not None
    mark_submitted(catalog, record.id, job_id="1", cluster="bench", now=time.time())
    return catalog, record.id


def ingest_jsonl(catalog: Catalog, session_id: int, run_dir: Path, file: Path) -> int:
    chunk, new_offset = read_new_lines(file, 0)
    batch = parse_metric_lines(chunk, 0, session_id)
    store_metric_batch(catalog, session_id, batch, CursorState(), new_offset, time.time())
    return len(batch.points)


def ingest_captured(catalog: Catalog, session_id: int, run_dir: Path, file: Path) -> int:
    relative = file.relative_to(run_dir).as_posix()
    report = scrape_captured(
        catalog, LocalFiles(), session_id, str(run_dir), {}, [relative], time.time(), time.time()
    )
    assert not report.warnings, report.warnings
    return report.points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nsml-bench-capture-"))
    try:
        run_dir = work / "run"
        run_dir.mkdir()
        inputs = write_inputs(run_dir, args.steps)
        expected = args.steps * len(METRICS)
        # Lightning logs the epoch as a column of its own; capture keeps it as a metric.
        points_of = {"jsonl": expected, "tensorboard": expected, "csv": expected + args.steps}
        paths: dict[str, Callable[[Catalog, int, Path, Path], int]] = {
            "jsonl": ingest_jsonl,
            "tensorboard": ingest_captured,
            "csv": ingest_captured,
        }
        best: dict[str, float] = {}
        runs = 0
        for repeat in range(args.repeats):
            for name, ingest in paths.items():
                catalog, session_id = fresh_catalog(work / f"{name}-{repeat}.db", run_dir)
                started = time.perf_counter()
                points = ingest(catalog, session_id, run_dir, inputs[name])
                elapsed = time.perf_counter() - started
                catalog.close()
                runs += 1
                assert points == points_of[name], (name, points, points_of[name])
                best[name] = min(best.get(name, elapsed), elapsed)
        sizes = {name: inputs[name].stat().st_size / 1e6 for name in inputs}
        print(
            f"{args.steps:,} steps x {len(METRICS)} metrics = {expected:,} points (+ epoch in CSV)"
        )
        print(f"best of {args.repeats} interleaved runs each, fresh SQLite catalog per run")
        print()
        base = points_of["jsonl"] / best["jsonl"]
        print(f"{'format':<12} {'MB':>6} {'best ms':>9} {'points/s':>12} {'vs jsonl':>9}  verdict")
        for name, seconds in best.items():
            rate = points_of[name] / seconds
            ratio = rate / base
            verdict = "" if name == "jsonl" else ("MEETS" if ratio >= TARGET else "MISSES")
            print(
                f"{name:<12} {sizes[name]:6.1f} {seconds * 1000:9.1f} {rate:12,.0f} "
                f"{ratio:9.1%}  {verdict}"
            )
        print(f"\ntarget: each capture format >= {TARGET:.0%} of the jsonl rate")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
