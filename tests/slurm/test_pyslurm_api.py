"""pyslurm 22.5 against the real sandbox Slurm, one test per place where the backend has to
work around it (nsml_hpc/backends/pyslurm_compat.py, pyslurm_records.py): each compares what
the pyslurm backend says with what Slurm's own commands say, or watches the job itself."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.backends.pyslurm_backend import PyslurmBackend
from nsml_hpc.job.spec import Resources, SessionSpec
from nsml_hpc.slurm.version import major_minor
from nsml_hpc.submit.placement import place

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]


@pytest.fixture
def backend() -> PyslurmBackend:
    return PyslurmBackend("pyslurm")


@pytest.fixture
def jobs() -> Iterator[list[str]]:
    """Job ids a test submitted; cancelled afterwards (the cluster is shared)."""
    submitted: list[str] = []
    yield submitted
    if submitted:
        subprocess.run(["scancel", *submitted], capture_output=True, timeout=30, check=False)


def _script(folder: Path, body: str, *directives: str) -> str:
    path = folder / "job.sbatch"
    lines = ["#!/bin/bash", *(f"#SBATCH --{d}" for d in directives), body, ""]
    path.write_text("\n".join(lines))
    return str(path)


def test_the_time_limit_warning_signal_reaches_the_job(
    backend: PyslurmBackend, jobs: list[str], tmp_path: Path
) -> None:
    """pyslurm before 24.5 builds the job without its ``signal``; the backend applies it."""
    release = major_minor(backend.api.version)
    assert release is not None
    assert backend.api.features.applies_signal is (release >= (24, 5))
    marker = tmp_path / "warned"
    script = _script(
        tmp_path,
        f"trap 'echo USR2 > {marker}; exit 0' USR2\nfor i in $(seq 120); do sleep 0.5; done",
        "time=1",
        "signal=B:USR2@50",  # 50 s before the 1-minute limit: about 10 s after the start
        f"output={tmp_path}/out-%j.txt",
        f"chdir={tmp_path}",
    )
    jobs.append(backend.submit(script))
    deadline = time.monotonic() + 100
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert marker.read_text().strip() == "USR2"


def test_max_array_size_is_the_one_scontrol_shows(backend: PyslurmBackend) -> None:
    assert backend.api.features.array_size_from in ("legacy", "config")
    assert backend.max_array_size() == CliBackend("local").max_array_size()


def test_gpus_in_use_per_node_agree_with_sinfo(
    backend: PyslurmBackend, jobs: list[str], tmp_path: Path
) -> None:
    """22.5's Node objects say 0 GPUs in use and ALLOCATED for a partly used node; the
    backend reads nodes the way sinfo does."""
    script = _script(tmp_path, "sleep 60", "gres=gpu:1", f"output={tmp_path}/out-%j.txt")
    jobs.append(backend.submit(script))
    cli = CliBackend("local")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ours = backend.cluster_gpus()
        theirs = cli.cluster_gpus()
        used = [node.gpus_used for node in ours]
        if ours == theirs and any(used):  # the same moment (other users' jobs come and go)
            break
        time.sleep(0.5)
    assert ours == theirs
    assert any(node.gpus_used >= 1 and node.state in ("mixed", "allocated") for node in ours)


def test_an_arrays_waiting_tasks_are_each_known_to_accounting(
    backend: PyslurmBackend, jobs: list[str], tmp_path: Path
) -> None:
    """slurmdbd gives the tasks that have not started as a hex bitmap (``0xE``) and pyslurm
    gives task 0 no task id; the records still name every task as sacct does."""
    since = time.time() - 5
    script = _script(
        tmp_path, "sleep 1", "array=0-3%1", f"output={tmp_path}/out-%A_%a.txt", "time=2"
    )
    array_id = backend.submit(script)
    jobs.append(array_id)
    wanted = {f"{array_id}_{task}" for task in range(4)}
    deadline = time.monotonic() + 60
    seen: set[str] = set()
    while time.monotonic() < deadline and seen != wanted:
        seen = {record.job_id for record in backend.query([array_id], since)}
        time.sleep(0.5)
    assert seen == wanted
    sacct = CliBackend("local").query([array_id], since)
    assert {record.job_id for record in sacct} == wanted
    queued = {record.job_id for record in backend.queue(sorted(wanted))}
    assert queued <= wanted and queued  # slurmctld names them the same way


def test_accounting_reads_back_what_slurm_gave_the_job_as_sacct_does(
    backend: PyslurmBackend, jobs: list[str], tmp_path: Path
) -> None:
    """Partition, account, QOS, time limit and node count from ``db.Jobs.load`` equal sacct's
    read-back of the same jobs once they ran (one with a time limit, one without); the GPU
    count is not in pyslurm 22.5's accounting record, so it stays unreported (None) where
    sacct says 1. (A job not started yet: see the pure tests, pyslurm gives no node count.)"""
    since = time.time() - 5
    output = f"output={tmp_path}/out-%j.txt"
    limited = backend.submit(_script(tmp_path, "true", "time=7", "gres=gpu:1", output))
    jobs.append(limited)
    unlimited = backend.submit(_script(tmp_path, "true", output))
    jobs.append(unlimited)
    wanted = [limited, unlimited]
    fields = ("partition", "account", "qos", "time_limit", "nodes", "allocation_complete")
    deadline = time.monotonic() + 240  # the GPU may be taken for a while on the shared node
    while True:
        mine = {r.job_id: r for r in backend.query(wanted, since)}
        theirs = {r.job_id: r for r in CliBackend("local").query(wanted, since)}
        # Ended, and complete: slurmdbd can have a quick job's end before its start record.
        done = [
            r
            for r in [*mine.values(), *theirs.values()]
            if r.ended_at is not None and r.allocation_complete
        ]
        if len(done) == 4 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for job_id in wanted:
        assert [getattr(mine[job_id], f) for f in fields] == [
            getattr(theirs[job_id], f) for f in fields
        ]
    assert mine[limited].time_limit == "00:07:00" and mine[limited].partition
    assert theirs[limited].gpus == 1 and mine[limited].gpus is None


def test_partition_auto_asks_slurms_test_only_submit(backend: PyslurmBackend) -> None:
    """pyslurm has no ``sbatch --test-only``: the backend's estimate comes from the command,
    over the partitions pyslurm lists (the same, in the same order, as sinfo's)."""
    assert backend.partitions() == CliBackend("local").partitions()
    spec = SessionSpec(project="p", script="t.py", resources=Resources(gpus=1, time="10"))
    placement = place(spec, backend)
    chosen = placement.spec.resources.partition
    assert chosen in backend.partitions()
    assert placement.explanation.startswith(f"partition {chosen}:")


def test_the_users_queue_reads_as_squeue_prints_it(
    backend: PyslurmBackend, jobs: list[str], tmp_path: Path
) -> None:
    """Held jobs (they stay PENDING): a plain one and a three-task array, as ``squeue --user``
    lists them; jobs that ended (slurmctld keeps them a while) are not listed."""
    script = _script(tmp_path, "true", f"output={tmp_path}/out-%j.txt", "time=5")
    fields = {"script": script, "priority": 0, "working_directory": str(tmp_path)}
    plain = str(backend.api.submit({**fields, "name": "held"}))
    array = str(backend.api.submit({**fields, "name": "held-array", "array": "0-2"}))
    ended = backend.submit(script)
    jobs.extend([plain, array, ended])
    ours = {plain, f"{array}_[0-2]", ended}
    cli = CliBackend("local")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        theirs = [job for job in cli.user_queue(backend.user) if job.job_id in ours]
        mine = [job for job in backend.user_queue(backend.user) if job.job_id in ours]
        if len(theirs) == 2 and mine == theirs:  # `ended` has ended, at the same moment
            break
        time.sleep(0.5)
    assert [job.job_id for job in mine] == [plain, f"{array}_[0-2]"]
    assert mine == theirs
    assert {job.reason for job in mine} == {"JobHeldUser"}


PER_JOB = (
    *("SLURM_JOB_ID=", "SLURM_JOBID=", "SLURM_TASK_PID=", "SLURM_JOB_START_TIME="),
    *("SLURM_JOB_END_TIME=", "SLURM_CPU_BIND", "SLURM_JOB_GPUS=", "SLURM_STEP_GPUS="),
    *("GPU_DEVICE_ORDINAL=", "CUDA_VISIBLE_DEVICES=", "SLURM_JOB_NAME="),
)


def test_the_job_sees_the_environment_sbatch_gives_it(
    backend: PyslurmBackend, jobs: list[str], tmp_path: Path
) -> None:
    """pyslurm sends the submitter's environment but not what sbatch adds to it (job name,
    submit dir and host, priority): slurmd's ``%x`` would say ``(null)``. Both jobs write
    their environment to ``<job name>.env``; only the task count differs (pyslurm always
    asks for one task, sbatch leaves it to Slurm)."""
    body = f"env | sort > {tmp_path}/$SLURM_JOB_NAME.env"
    for name, submit in (("cli", CliBackend("local").submit), ("pyslurm", backend.submit)):
        folder = tmp_path / name
        folder.mkdir()
        script = _script(folder, body, f"job-name={name}", f"output={tmp_path}/%x.out")
        jobs.append(submit(script))
    deadline = time.monotonic() + 60
    files = [tmp_path / "cli.env", tmp_path / "pyslurm.env"]
    while not all(path.exists() for path in files) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(0.5)  # the sort finishes writing
    cli, ours = (
        {
            line
            for line in path.read_text().splitlines()
            if line.startswith("SLURM_") and not line.startswith(PER_JOB)
        }
        for path in files
    )
    assert ours - cli == {"SLURM_NTASKS=1", "SLURM_NPROCS=1"}
    # The local backend runs sbatch with SLURM_TIME_FORMAT=%s (so that it can read sbatch's
    # times), and sbatch passes its environment on to the job; not the user's, and not
    # something a job needs, so pyslurm does not copy it.
    assert {line for line in cli - ours if not line.startswith("SLURM_TIME_FORMAT=")} == set()
    assert (tmp_path / "pyslurm.out").exists()  # %x is the job name, not "(null)"
