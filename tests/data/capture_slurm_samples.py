"""Re-capture the Slurm samples under tests/data/ from a real cluster (the sandbox).

Run as a user that may submit to the sandbox (root there), from the repository root:

    .venv/bin/python tests/data/capture_slurm_samples.py

It submits a handful of tiny jobs, runs exactly the argv that ``sacct_command`` and
``squeue_command`` build, writes their stdout (and a few sbatch error messages) to
tests/data/, and scancels everything it submitted. It takes about two minutes because one
job is left to hit its one-minute time limit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from nsml_hpc.slurm.sacct import parse_sacct, sacct_command
from nsml_hpc.slurm.squeue import squeue_command
from nsml_hpc.slurm.timefmt import TIME_FORMAT_ENV

DATA = Path(__file__).resolve().parent
WORK = Path("/tmp/nsml-hpc-capture")
SUBMITTED: list[str] = []


def sbatch(*args: str) -> str:
    argv = [
        "sbatch",
        "--parsable",
        f"--chdir={WORK}",
        f"--output={WORK}/slurm-%j.out",
        *args,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    job_id = done.stdout.strip().split(";")[0]
    SUBMITTED.append(job_id)
    print("submitted", job_id, args, file=sys.stderr)
    return job_id


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    print("running", argv, file=sys.stderr)
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def save(name: str, text: str) -> None:
    (DATA / name).write_text(text, encoding="utf-8")
    print(f"--- {name}\n{text}", file=sys.stderr)


def states(job_ids: list[str], since: float) -> dict[str, str]:
    done = run(sacct_command(job_ids, since))
    return {record.job_id: record.slurm_state for record in parse_sacct(done.stdout)}


def wait_for(
    job_ids: list[str],
    since: float,
    predicate: Callable[[dict[str, str]], bool],
    timeout: float,
) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate(states(job_ids, since)):
            return
        time.sleep(2)
    raise SystemExit(f"timed out waiting on {job_ids}")


def main() -> None:
    os.environ.update(TIME_FORMAT_ENV)  # what the backends run every Slurm command with
    WORK.mkdir(parents=True, exist_ok=True)
    since = time.time() - 5
    try:
        timeout_job = sbatch("--job-name=cap-timeout", "--time=1", "--wrap", "sleep 300")
        completed = sbatch("--job-name=cap-completed", "--wrap", "true")
        failed = sbatch("--job-name=cap-failed", "--wrap", "exit 3")
        signalled = sbatch("--job-name=cap-signal", "--wrap", "kill -9 $$")
        cancel_running = sbatch("--job-name=cap-cancel-run", "--wrap", "sleep 300")
        wait_for([cancel_running], since, lambda s: s.get(cancel_running) == "RUNNING", 60)
        run(["scancel", cancel_running])
        cancel_pending = sbatch("--job-name=cap-cancel-pend", "--begin=now+1hour", "--wrap", "true")
        run(["scancel", cancel_pending])
        # Read back what the job got: another partition, a time limit, a node count.
        small = sbatch(
            "--job-name=cap-small", "--partition=small", "--time=5", "--nodes=1", "--wrap", "true"
        )
        save("sbatch_test_only_ok.txt", run(["sbatch", "--test-only", "--wrap", "true"]).stderr)

        gpu_jobs = [
            sbatch(f"--job-name=cap-gpu{n}", "--gres=gpu:2", "--wrap", "sleep 30")
            for n in (1, 2, 3)
        ]
        wait_for(
            gpu_jobs,
            since,
            lambda s: sorted(s.get(j, "") for j in gpu_jobs) == ["PENDING", "RUNNING", "RUNNING"],
            60,
        )
        time.sleep(3)  # let the scheduler settle the pending reason on Resources
        save("squeue_pending.txt", run(squeue_command(gpu_jobs)).stdout)
        save("sacct_running_pending.txt", run(sacct_command(gpu_jobs, since)).stdout)

        everything = [
            timeout_job,
            completed,
            failed,
            signalled,
            cancel_running,
            cancel_pending,
            small,
        ]
        wait_for(
            everything + gpu_jobs,
            since,
            lambda s: all(
                s.get(j, "PENDING") not in ("PENDING", "RUNNING") for j in everything + gpu_jobs
            ),
            240,
        )
        save("sacct_mixed.txt", run(sacct_command(everything + gpu_jobs, since)).stdout)
        save("squeue_finished.txt", run(squeue_command(everything + gpu_jobs)).stdout)

        gone = run(squeue_command(["999999"]))
        save("squeue_unknown_job_stderr.txt", gone.stderr)

        for name, flag in (
            ("sbatch_error_partition.txt", "--partition=nosuch"),
            ("sbatch_error_account.txt", "--account=nosuch"),
            ("sbatch_error_gres.txt", "--gres=gpu:5"),
        ):
            done = run(["sbatch", "--parsable", flag, "--wrap", "true"])
            if done.returncode == 0:
                SUBMITTED.append(done.stdout.strip().split(";")[0])
            save(name, done.stderr)
        save(
            "sbatch_ok_stdout.txt", run(["sbatch", "--parsable", "--hold", "--wrap", "true"]).stdout
        )
        SUBMITTED.append((DATA / "sbatch_ok_stdout.txt").read_text().strip().split(";")[0])
    finally:
        if SUBMITTED:
            run(["scancel", *SUBMITTED])


if __name__ == "__main__":
    main()
