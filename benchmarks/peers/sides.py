"""One measurement in a fresh process, printed as one JSON line: what ``run.py`` interleaves.

Each side runs in the interpreter of the tool it measures (nsml-hpc's .venv, or the peers'
venv for MLflow and submitit), on the same input file, and reports seconds for its timed part
only (imports, catalog and experiment creation are outside the clock).

    python sides.py ingest-nsml FILE          # read + parse + store_metric_batch (sync's path)
    python sides.py ingest-sqlite FILE DDL    # json.loads + executemany, same table and index
    python sides.py ingest-mlflow FILE        # json.loads + MlflowClient.log_batch (SQLite)
    python sides.py sweep-nsml N              # nsml-hpc sweep of N configurations, held
                                              # (into a catalog made before the clock)
    python sides.py sweep-submitit N          # submitit map_array of N tasks, held
    python sides.py sweep-floor N             # N run dirs with a small JSON + one held array
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METRICS = ("loss", "acc", "val_loss", "lr")


def _points(path: Path) -> list[tuple[int, float, str, float]]:
    rows = []
    with path.open("rb") as handle:
        for raw in handle:
            record = json.loads(raw)
            for name in METRICS:
                rows.append((record["step"], record["time"], name, record[name]))
    return rows


def ingest_nsml(path: Path) -> dict[str, float]:
    from nsml_hpc.catalog import open_catalog
    from nsml_hpc.catalog.metrics import CursorState, store_metric_batch
    from nsml_hpc.catalog.sessions import mark_submitted, reserve_session
    from nsml_hpc.job.spec import SessionSpec
    from nsml_hpc.runfiles.scrape import parse_metric_lines, read_new_lines

    folder = Path(tempfile.mkdtemp(prefix="peers-nsml-"))
    catalog = open_catalog(f"sqlite:///{folder / 'catalog.db'}")
    record = reserve_session(
        catalog,
        spec=SessionSpec(project="peers", script="t.py", cluster="peers"),
        user="peers",
        run_dir_for=lambda n: str(folder / str(n)),
        is_free=lambda _n: True,
        now=time.time(),
    )
    assert record.id is not None
    mark_submitted(catalog, record.id, job_id="1", cluster="peers", now=time.time())
    started = time.perf_counter()
    chunk, offset = read_new_lines(path, 0, path.stat().st_size)
    batch = parse_metric_lines(chunk, 0, record.id)
    store_metric_batch(catalog, record.id, batch, CursorState(), offset, time.time())
    seconds = time.perf_counter() - started
    catalog.close()
    return {"seconds": seconds, "points": len(batch.points)}


def schema_ddl() -> str:
    """The metric_point table and its indexes exactly as nsml-hpc creates them (nsml venv)."""
    from nsml_hpc.catalog import open_catalog

    folder = Path(tempfile.mkdtemp(prefix="peers-ddl-"))
    catalog = open_catalog(f"sqlite:///{folder / 'c.db'}")
    catalog.close()
    conn = sqlite3.connect(folder / "c.db")
    ddl = [
        sql
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name='metric_point' AND sql IS NOT NULL"
        )
    ]
    conn.close()
    return ";\n".join(ddl)


def ingest_sqlite(path: Path, ddl_file: Path) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="peers-sqlite-"))
    conn = sqlite3.connect(folder / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")  # as nsml-hpc's catalog has it
    conn.execute("CREATE TABLE session (id INTEGER PRIMARY KEY)")  # the foreign key's target
    conn.execute("INSERT INTO session (id) VALUES (1)")
    for statement in ddl_file.read_text().split(";\n"):  # the same table, the same indexes
        conn.execute(statement)
    sql = (
        "INSERT INTO metric_point (session_id, line, step, time, name, value) VALUES (?,?,?,?,?,?)"
    )
    started = time.perf_counter()
    rows = []
    with path.open("rb") as handle:
        for line, raw in enumerate(handle):
            record = json.loads(raw)
            for name in METRICS:
                rows.append((1, line, record["step"], record["time"], name, record[name]))
    conn.execute("BEGIN")
    conn.executemany(sql, rows)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return {"seconds": seconds, "points": len(rows)}


def ingest_mlflow(path: Path) -> dict[str, float]:
    import logging

    logging.disable(logging.INFO)
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    folder = Path(tempfile.mkdtemp(prefix="peers-mlflow-"))
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("peers"))
    started = time.perf_counter()
    metrics = [
        Metric(name, value, int(when * 1000), step) for step, when, name, value in _points(path)
    ]
    for start in range(0, len(metrics), 1000):  # log_batch takes at most 1,000 metrics a call
        client.log_batch(run.info.run_id, metrics=metrics[start : start + 1000])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "points": len(metrics)}


def _held_env() -> dict[str, str]:
    return {**os.environ, "SBATCH_HOLD": "1"}  # nothing runs: the arrays are cancelled after


def _cancel(array_id: str) -> None:
    subprocess.run(["scancel", array_id.split("_")[0]], check=False, capture_output=True)


def sweep_nsml(count: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="peers-sweep-nsml-"))
    (folder / "proj").mkdir()
    (folder / "proj" / "t.py").write_text("import sys\nprint(sys.argv)\n")
    (folder / "config.toml").write_text("")  # an empty config: every default
    env = {
        **_held_env(),
        "NSML_HPC_CATALOG": f"sqlite:///{folder / 'catalog.db'}",
        "NSML_HPC_RUN_ROOT": str(folder / "runs"),
        "NSML_HPC_CONFIG": str(folder / "config.toml"),
    }
    grid = ",".join(str(seed) for seed in range(count))
    created = time.perf_counter()  # the catalog exists before a sweep, as it does in use
    subprocess.run(
        [sys.executable, "-m", "nsml_hpc", "ps", "--no-sync"],
        cwd=folder / "proj",
        env=env,
        capture_output=True,
        check=True,
    )
    catalog_seconds = time.perf_counter() - created
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "nsml_hpc", "sweep", "t.py", "--grid", f"seed={grid}"],
        cwd=folder / "proj",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"nsml-hpc sweep failed: {done.stderr.strip()}")
    for array_id in _arrays_of(folder / "catalog.db"):
        _cancel(array_id)
    return {"seconds": seconds, "tasks": count, "catalog_seconds": catalog_seconds}


def _arrays_of(catalog: Path) -> set[str]:
    conn = sqlite3.connect(catalog)
    ids = {job_id.split("_")[0] for (job_id,) in conn.execute("SELECT job_id FROM job")}
    conn.close()
    return ids


def _square(value: int) -> int:
    return value * value


def sweep_submitit(count: int) -> dict[str, float]:
    import submitit

    folder = Path(tempfile.mkdtemp(prefix="peers-sweep-submitit-"))
    os.environ["SBATCH_HOLD"] = "1"
    started = time.perf_counter()
    executor = submitit.AutoExecutor(folder=folder / "logs", cluster="slurm")
    executor.update_parameters(timeout_min=5)
    jobs = executor.map_array(_square, range(count))
    seconds = time.perf_counter() - started
    _cancel(jobs[0].job_id)
    return {"seconds": seconds, "tasks": len(jobs)}


def sweep_floor(count: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="peers-sweep-floor-"))
    script = folder / "array.sh"
    script.write_text("#!/bin/bash\ntrue\n")
    started = time.perf_counter()
    for index in range(count):
        run_dir = folder / str(index)
        run_dir.mkdir()
        (run_dir / "session.json").write_text(json.dumps({"index": index, "seed": index}))
    done = subprocess.run(
        ["sbatch", "--parsable", "--hold", f"--array=0-{count - 1}", str(script)],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    _cancel(done.stdout.strip().split(";")[0])
    return {"seconds": seconds, "tasks": count}


def main(argv: list[str]) -> None:
    kind, arg = argv[0], argv[1]
    if kind == "schema-ddl":
        Path(arg).write_text(schema_ddl())
        return
    sides = {
        "ingest-nsml": lambda: ingest_nsml(Path(arg)),
        "ingest-sqlite": lambda: ingest_sqlite(Path(arg), Path(argv[2])),
        "ingest-mlflow": lambda: ingest_mlflow(Path(arg)),
        "sweep-nsml": lambda: sweep_nsml(int(arg)),
        "sweep-submitit": lambda: sweep_submitit(int(arg)),
        "sweep-floor": lambda: sweep_floor(int(arg)),
    }
    print(json.dumps(sides[kind]()))


if __name__ == "__main__":
    main(sys.argv[1:])
