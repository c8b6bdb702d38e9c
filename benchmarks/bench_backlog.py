"""A big metrics.jsonl with a torn last line: memory stays bounded while sync catches up.

Writes a metrics.jsonl of ``--size-mb`` megabytes (default 1,024: one point per line, as
``report(step=N, loss=...)`` writes it) whose last line is torn (half written), then runs
syncs against it until nothing new arrives, and prints: syncs needed, points ingested, the
peak resident memory of this process (``ru_maxrss``) against the file's size, and the rate.
Checks, not timings, decide correctness: every complete line arrives exactly once, the torn
line waits, and arrives once it is completed.

Run: ``.venv/bin/python benchmarks/bench_backlog.py [--size-mb 1024]`` (a 1 GB run writes a
~3 GB catalog to a temporary folder and takes a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from nsml_hpc.backends.fake import FakeBackend, FakeJob
from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.catalog import open_catalog
from nsml_hpc.catalog.sessions import get_session, mark_submitted, reserve_session
from nsml_hpc.config.settings import Settings
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.runfiles.scrape import MAX_READ_BYTES
from nsml_hpc.sync.run import sync

LINE = b'{"step":%d,"time":1700000000.5,"loss":0.123456}\n'


def write_file(path: Path, size: int) -> int:
    """Complete lines up to ``size`` bytes, then a torn one; returns the complete lines."""
    lines = 0
    block = 10_000
    with path.open("wb") as out:
        written = 0
        while written < size:
            chunk = b"".join(LINE % step for step in range(lines, lines + block))
            out.write(chunk)
            written += len(chunk)
            lines += block
        out.write(b'{"step":%d,"time":1700000000.5,"lo' % lines)  # torn: the writer was killed
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nsml-bench-backlog-"))
    try:
        run_dir = work / "run"
        run_dir.mkdir()
        metrics = run_dir / "metrics.jsonl"
        started = time.perf_counter()
        lines = write_file(metrics, args.size_mb * 1024 * 1024)
        size_mb = metrics.stat().st_size / 2**20
        print(
            f"metrics.jsonl: {size_mb:,.0f} MiB, {lines:,} complete lines + 1 torn line "
            f"(written in {time.perf_counter() - started:.1f} s)"
        )
        catalog = open_catalog(f"sqlite:///{work / 'catalog.db'}")
        record = reserve_session(
            catalog,
            spec=SessionSpec(project="big", script="t.py"),
            user="bench",
            run_dir_for=lambda _n: str(run_dir),
            is_free=lambda _n: True,
            now=time.time(),
        )
        assert record.id is not None
        mark_submitted(catalog, record.id, job_id="1", cluster="local", now=time.time())
        settings = Settings(catalog_url="unused", run_root=work, poll_floor_seconds=0.5)
        # the shipped fake of the backend seam: no Slurm behind it, the one job RUNNING; the
        # run directory is on this machine
        backend = FakeBackend(files=LocalFiles())
        backend.add(FakeJob("1", "RUNNING", None, started_at=time.time()))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        syncs = points = 0
        now = time.time()
        started = time.perf_counter()
        while True:
            now += 1.0
            report = sync(catalog, settings, lambda _c: backend, now=now)
            syncs += 1
            points += report.new_points
            if report.new_points == 0:
                break
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stored = get_session(catalog, record.name)
        print(
            f"syncs until caught up: {syncs} (at most {MAX_READ_BYTES / 2**20:.0f} MiB read per "
            f"file per batch)"
        )
        print(
            f"points: {points:,} ingested, catalog says {stored.metric_count:,}, "
            f"malformed {stored.malformed_lines}"
        )
        print(
            f"peak RSS: {peak:,.0f} MiB (before the syncs: {before:,.0f} MiB) for a "
            f"{size_mb:,.0f} MiB file -> {peak / size_mb:.2f} of its size"
        )
        print(f"rate: {points / elapsed:,.0f} points/s over {elapsed:.1f} s")
        ok = points == lines and stored.malformed_lines == 0
        with metrics.open("ab") as out:
            out.write(b'ss":0.5}\n')  # the writer comes back and completes the line
        report = sync(catalog, settings, lambda _c: backend, now=now + 1)
        ok = ok and report.new_points == 1
        print(f"torn line: waited while torn, arrived once completed: {'yes' if ok else 'NO'}")
        catalog.close()
        if not ok:
            raise SystemExit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
