"""Snapshot hot paths: ``nsml_hpc.save`` overhead, sync with many snapshots, gc planning.

* **save**: a small snapshot (one 64 KiB file) with ``nsml_hpc.save`` against two baselines in
  the same run, on the same file system: writing the file into a folder (what a script does
  without nsml-hpc, no durability) and writing + ``fsync``-ing it. ``save`` adds the fsync of
  every file and folder, the manifest (fsynced), the rename and the parent's fsync. Median of
  ``--saves`` each, interleaved. Target: a save costs at most 3 fsync'd writes (ratio <= 3 x).
* **sync**: ``--sessions`` live sessions with ``--snapshots`` snapshots each. The first sync
  reads every manifest; a steady sync (nothing changed) must only ``stat`` each session's
  ``snapshots/`` folder. Timed: ``nsml_hpc.snapshots.sync.sync_snapshots`` (the snapshot part
  of a sync) through the local files seam. Target: steady <= 20 ms for 1,000 sessions.
* **gc plan**: :func:`nsml_hpc.snapshots.retention.plan` over 100,000 snapshots (pure).
  Target <= 1 s.

Run: ``.venv/bin/python benchmarks/bench_snapshots.py``
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.catalog import open_catalog
from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.job.snapshot_store import PendingSnapshot
from nsml_hpc.slurm.states import SessionState
from nsml_hpc.snapshots.retention import GIB, Policies, Policy, SessionFacts, SnapshotFacts, plan
from nsml_hpc.snapshots.sync import sync_snapshots

PAYLOAD = os.urandom(64 * 1024)


def bench_save(root: Path, saves: int) -> None:
    os.environ["NSML_HPC_RUN_DIR"] = str(root / "run")
    (root / "run").mkdir()
    (root / "plain").mkdir()
    import nsml_hpc

    def with_nsml(i: int) -> float:
        start = time.perf_counter()
        with nsml_hpc.save(step=i) as folder:
            (folder / "model.bin").write_bytes(PAYLOAD)
        return time.perf_counter() - start

    def plain(i: int) -> float:
        start = time.perf_counter()
        folder = root / "plain" / f"p{i}"
        folder.mkdir()
        (folder / "model.bin").write_bytes(PAYLOAD)
        return time.perf_counter() - start

    def fsynced(i: int) -> float:
        start = time.perf_counter()
        folder = root / "plain" / f"f{i}"
        folder.mkdir()
        with open(folder / "model.bin", "wb") as out:
            out.write(PAYLOAD)
            out.flush()
            os.fsync(out.fileno())
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"nsml": [], "plain": [], "fsync": []}
    for i in range(saves):
        times["nsml"].append(with_nsml(i))
        times["plain"].append(plain(i))
        times["fsync"].append(fsynced(i))
    med = {key: statistics.median(values) * 1000 for key, values in times.items()}
    ratio = med["nsml"] / med["fsync"]
    print(
        f"save (64 KiB, {saves} each, median): nsml_hpc.save {med['nsml']:.2f} ms, "
        f"plain write {med['plain']:.2f} ms, write+fsync {med['fsync']:.2f} ms"
    )
    print(
        f"  ratio save / write+fsync = {ratio:.2f} x  target: <= 3 x  "
        f"{'MEETS' if ratio <= 3 else 'MISSES'}"
    )
    del os.environ["NSML_HPC_RUN_DIR"]


def bench_sync(root: Path, sessions: int, snapshots: int) -> None:
    catalog = open_catalog(f"sqlite:///{root / 'catalog.db'}")
    t0 = time.time() - 3600
    targets = []
    with catalog.session() as db:
        for number in range(1, sessions + 1):
            run_dir = root / "runs" / str(number)
            snap_root = run_dir / "snapshots"
            for step in range(snapshots):
                pending = PendingSnapshot.begin(snap_root, f"step-{step}")
                (pending.folder / "w.bin").write_bytes(b"x" * 100)
                pending.commit(
                    step=step,
                    metrics={"loss": 1 / (step + 1)},
                    job_id=str(number),
                    session=f"b/{number}",
                    restart_count=0,
                )
            past = t0 + number
            for path in [*snap_root.iterdir(), snap_root]:
                os.utime(path, (past, past))  # old enough to trust the mtimes
            db.add(
                SessionRecord(
                    name=f"b/{number}",
                    project="b",
                    number=number,
                    user="bench",
                    owner="bench",
                    cluster="local",
                    state=SessionState.RUNNING,
                    run_dir=str(run_dir),
                    spec_json="{}",
                    created_at=t0,
                    updated_at=t0,
                )
            )
    with catalog.session() as db:
        from sqlmodel import select

        for record in db.exec(select(SessionRecord)).all():
            assert record.id is not None
            targets.append((record.id, "local", record.run_dir))
    files = LocalFiles()
    start = time.perf_counter()
    first = sync_snapshots(catalog, targets, lambda cluster: files, time.time())
    first_s = time.perf_counter() - start
    steady: list[float] = []
    for _ in range(10):
        start = time.perf_counter()
        report = sync_snapshots(catalog, targets, lambda cluster: files, time.time())
        steady.append(time.perf_counter() - start)
        assert report.manifests_read == 0 and report.sessions_listed == 0
    median_ms = statistics.median(steady) * 1000
    print(
        f"sync, {sessions} sessions x {snapshots} snapshots: first {first_s:.2f} s "
        f"({first.manifests_read} manifests, {first.manifests_read / first_s:.0f}/s); "
        f"steady median {median_ms:.1f} ms (p90 {sorted(steady)[8] * 1000:.1f} ms)"
    )
    print(
        f"  target: steady <= 20 ms per 1,000 sessions  "
        f"{'MEETS' if median_ms <= 20 * sessions / 1000 else 'MISSES'}"
    )
    catalog.close()


def bench_plan(count: int) -> None:
    rng = random.Random(1)
    sessions = [SessionFacts(i, f"p/{i}", f"proj{i % 10}", i % 3 == 0, 0.0) for i in range(1000)]
    snaps = [
        SnapshotFacts(
            i,
            i % 1000,
            f"s{i}",
            i,
            float(i),
            rng.randint(1, 10) * GIB // 10,
            {"val_loss": rng.random()},
            pinned=i % 97 == 0,
        )
        for i in range(count)
    ]
    policies = Policies(
        default=Policy(
            keep_last=3,
            keep_best=2,
            best_metric="val_loss",
            finished_days=30,
            disk_budget_bytes=500 * GIB,
        )
    )
    start = time.perf_counter()
    result = plan(snaps, sessions, policies, 40 * 86400.0)
    elapsed = time.perf_counter() - start
    print(
        f"gc plan, {count} snapshots / 1000 sessions: {elapsed * 1000:.0f} ms "
        f"({len(result.deletions)} deletions)  target: <= 1 s  "
        f"{'MEETS' if elapsed <= 1 else 'MISSES'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--snapshots", type=int, default=10)
    parser.add_argument("--plan", type=int, default=100_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nsml-bench-snap-"))
    try:
        bench_save(root, args.saves)
        bench_sync(root, args.sessions, args.snapshots)
        bench_plan(args.plan)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
