"""pyslurm vs Slurm's commands, side by side on the sandbox's real Slurm: a submit of 100
sessions, and a sync of 1,000 live sessions.

Needs the sandbox up, root, and the vendored pyslurm (scripts/setup.sh installs it). Run from
the repository root:

    .venv/bin/python benchmarks/bench_pyslurm.py [--submits 100] [--sessions 1000] [--syncs 7]

1. submit: ``--submits`` sessions per backend through nsml-hpc's whole ``submit()`` (session
   row, run directory, job script, then the backend's submit: ``sbatch --parsable`` or
   ``JobSubmitDescription(...).submit()``), the backends taking turns in rounds of 10. Every job
   is submitted HELD (``SBATCH_HOLD=1`` for sbatch, ``priority=0`` for pyslurm: what ``--hold``
   sets), so the shared cluster runs none of them; all are cancelled at the end. Shown: the
   whole submit and the backend's part alone, median and p90 per session, and the ratio.
2. sync: ``--sessions`` held jobs (submitted through pyslurm, untimed) and a fresh catalog
   with one PENDING session per job; then ``--syncs`` syncs per backend, alternating, each a
   real ``nsml_hpc.sync.run.sync``: ONE accounting query (``sacct`` / ``db.Jobs.load``) for all
   1,000, and ONE queue query (``squeue`` / ``Jobs.load``) because accounting keeps no reason
   for a pending job. Shown: the whole sync and the backend's two calls, median and p90.

No target and no assertion on a time (a shared 2-core machine is noisy); both backends run
in the same process, interleaved, against the same slurmctld and slurmdbd.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nsml_hpc.backends.base import SlurmBackend
from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.backends.pyslurm_backend import PyslurmBackend
from nsml_hpc.catalog import open_catalog
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import JobRecordRow, SessionRecord
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.config.clusters_file import add_profile
from nsml_hpc.config.settings import MIN_POLL_FLOOR, Settings, load_settings
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.slurm.states import SessionState
from nsml_hpc.submit.create import prepare, submit
from nsml_hpc.sync.run import sync
from nsml_hpc.workspace import Workspace

ROUND = 10
BACKENDS = ("cli", "pyslurm")


class Timed:
    """Wraps one backend method and keeps the seconds of each call."""

    def __init__(self, backend: Any, method: str) -> None:
        self.seconds: list[float] = []
        real = getattr(backend, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.seconds.append(time.perf_counter() - start)

        setattr(backend, method, timed)


def hold_pyslurm_submissions(backend: PyslurmBackend) -> None:
    """pyslurm's equivalent of sbatch --hold: priority 0."""
    real = backend.api.submit
    backend.api.submit = lambda fields: real({**fields, "priority": 0})  # type: ignore[method-assign]


def ms(values: Sequence[float]) -> str:
    if not values:
        return "not called"
    ordered = sorted(v * 1000 for v in values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):8.2f} ms  p90 {p90:8.2f} ms  (n={len(ordered)})"


def ratio(cli: Sequence[float], pyslurm: Sequence[float]) -> str:
    if not cli or not pyslurm:
        return "-"
    return f"{statistics.median(cli) / statistics.median(pyslurm):.1f}x"


def cancel(job_ids: list[str]) -> None:
    for start in range(0, len(job_ids), 200):
        chunk = [job_id.split("_", 1)[0] for job_id in job_ids[start : start + 200]]
        subprocess.run(["scancel", *chunk], capture_output=True, timeout=120, check=False)


@contextmanager
def nsml_home(workdir: Path) -> Iterator[None]:
    """nsml-hpc's catalog, run root and config in ``workdir`` (as the tests' nsml_env)."""
    values = {
        "NSML_HPC_CATALOG": f"sqlite:///{workdir / 'catalog.db'}",
        "NSML_HPC_RUN_ROOT": str(workdir / "runs"),
        "NSML_HPC_CONFIG": str(workdir / "config.toml"),
        "XDG_DATA_HOME": str(workdir / "xdg-data"),
        "XDG_CONFIG_HOME": str(workdir / "xdg-config"),
        "SBATCH_HOLD": "1",
    }
    (workdir / "config.toml").write_text("")  # a named config file must exist
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def bench_submit(workdir: Path, count: int, submitted: list[str]) -> None:
    code = workdir / "code"
    code.mkdir()
    (code / "train.py").write_text("print('held: never runs')\n")
    add_profile(ClusterProfile(name="pyslurm", backend="pyslurm"))
    workspace = Workspace.open(load_settings())
    try:
        backends: dict[str, SlurmBackend] = {
            "cli": workspace.backend_for("local"),
            "pyslurm": workspace.backend_for("pyslurm"),
        }
        pyslurm_backend = backends["pyslurm"]
        assert isinstance(pyslurm_backend, PyslurmBackend)
        hold_pyslurm_submissions(pyslurm_backend)
        inner = {name: Timed(backend, "submit") for name, backend in backends.items()}
        whole: dict[str, list[float]] = {name: [] for name in BACKENDS}
        prepared = {
            name: prepare(
                SessionSpec(
                    project=f"bench-{name}",
                    script="train.py",
                    cluster="local" if name == "cli" else "pyslurm",
                ),
                workspace.settings,
                code,
            )
            for name in BACKENDS
        }
        done = 0
        while done < count:
            size = min(ROUND, count - done)
            for name in BACKENDS:
                for _ in range(size):
                    start = time.perf_counter()
                    result = submit(
                        prepared[name], workspace.catalog, workspace.settings, backends[name]
                    )
                    whole[name].append(time.perf_counter() - start)
                    submitted.append(result.job_id)
            done += size
    finally:
        workspace.close()
    print(f"submit: {count} sessions per backend, held, in rounds of {ROUND} taking turns")
    for name in BACKENDS:
        print(f"  {name:8} whole submit()    {ms(whole[name])}")
        print(f"  {name:8} backend.submit    {ms(inner[name].seconds)}")
    print(
        f"  ratio cli/pyslurm: whole {ratio(whole['cli'], whole['pyslurm'])}, backend part "
        f"{ratio(inner['cli'].seconds, inner['pyslurm'].seconds)}"
    )


def held_jobs(backend: PyslurmBackend, workdir: Path, count: int) -> list[str]:
    script = workdir / "held.sbatch"
    script.write_text("#!/bin/bash\ntrue\n")
    fields = {
        "script": str(script),
        "name": "nsml-bench-held",
        "priority": 0,
        "standard_output": "/dev/null",
        "working_directory": str(workdir),
    }
    return [str(backend.api.submit(fields)) for _ in range(count)]


def populate(catalog: Catalog, run_root: Path, job_ids: list[str], t0: float) -> None:
    spec_json = json.dumps(
        SessionSpec(project="bench", script="train.py", cluster="bench").to_dict(), sort_keys=True
    )
    with catalog.session() as db:
        records = []
        for number, _job_id in enumerate(job_ids, start=1):
            run_dir = run_root / "bench" / str(number)
            run_dir.mkdir(parents=True)
            records.append(
                SessionRecord(
                    name=f"bench/{number}",
                    project="bench",
                    number=number,
                    user="root",
                    owner=catalog.user,  # sync asks about its own user's sessions only
                    cluster="bench",
                    state=SessionState.PENDING,
                    run_dir=str(run_dir),
                    spec_json=spec_json,
                    created_at=t0,
                    submitted_at=t0,
                    updated_at=t0,
                )
            )
        db.add_all(records)
        db.flush()
        db.add_all(
            JobRecordRow(
                session_id=record.id or 0,
                cluster="bench",
                job_id=job_id,
                state=SessionState.PENDING,
                submitted_at=t0,
            )
            for record, job_id in zip(records, job_ids, strict=True)
        )


def _always(backend: SlurmBackend) -> Callable[[str], SlurmBackend]:
    """sync's backend_for: this one backend for every cluster."""
    return lambda _cluster: backend


def bench_sync(workdir: Path, sessions: int, syncs: int, submitted: list[str]) -> None:
    backends: dict[str, Any] = {"cli": CliBackend("bench"), "pyslurm": PyslurmBackend("bench")}
    t0 = time.time() - 5
    start = time.perf_counter()
    job_ids = held_jobs(backends["pyslurm"], workdir, sessions)
    submitted.extend(job_ids)
    made = time.perf_counter() - start
    deadline = time.monotonic() + 120  # slurmdbd has a job about a second after its submit
    while len(backends["cli"].query(job_ids, t0)) < sessions and time.monotonic() < deadline:
        time.sleep(1.0)
    catalog = open_catalog(f"sqlite:///{workdir / 'sync.db'}")
    try:
        settings = Settings(
            catalog_url=str(catalog.engine.url),
            run_root=workdir / "sync-runs",
            poll_floor_seconds=MIN_POLL_FLOOR,
            submit_grace_seconds=3600,
        )
        populate(catalog, settings.run_root, job_ids, t0)
        now = time.time()
        first = sync(catalog, settings, lambda _cluster: backends["cli"], now=now)  # untimed
        calls = {
            name: (Timed(backend, "query"), Timed(backend, "queue"))
            for name, backend in backends.items()
        }
        whole: dict[str, list[float]] = {name: [] for name in BACKENDS}
        for _ in range(syncs):
            for name in BACKENDS:
                now += 1.0  # past the poll floor
                backend = _always(backends[name])
                start = time.perf_counter()
                report = sync(catalog, settings, backend, now=now)
                whole[name].append(time.perf_counter() - start)
                if report.errors or report.state_changes:
                    raise SystemExit(f"unexpected sync report ({name}): {report}")
    finally:
        catalog.close()
    print(
        f"sync: {sessions:,} live (PENDING, held) sessions, one job each ({made:.1f} s to submit "
        f"them through pyslurm); first sync untimed ({first.state_changes} state changes: "
        "their pending reason)"
    )
    for name in BACKENDS:
        query, queue = calls[name]
        print(f"  {name:8} whole sync()           {ms(whole[name])}")
        print(f"  {name:8} query (accounting)     {ms(query.seconds)}")
        print(f"  {name:8} queue (slurmctld)      {ms(queue.seconds)}")
    print(
        f"  ratio cli/pyslurm: whole {ratio(whole['cli'], whole['pyslurm'])}, query "
        f"{ratio(calls['cli'][0].seconds, calls['pyslurm'][0].seconds)}, queue "
        f"{ratio(calls['cli'][1].seconds, calls['pyslurm'][1].seconds)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submits", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--syncs", type=int, default=7)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="nsml-bench-pyslurm-"))
    submitted: list[str] = []
    try:
        with nsml_home(workdir):
            pyslurm = PyslurmBackend("probe")
            print(
                f"pyslurm {pyslurm.api.version} ({pyslurm.api.features}) vs Slurm's commands, "
                f"Slurm {pyslurm.probe().slurm_version}"
            )
            print()
            bench_submit(workdir, args.submits, submitted)
            print()
            bench_sync(workdir, args.sessions, args.syncs, submitted)
    finally:
        cancel(submitted)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
