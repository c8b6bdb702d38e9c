"""Re-capture the sinfo samples under tests/data/ from a real cluster (the sandbox).

Run as a user that may submit to the sandbox (root there), from the repository root:

    .venv/bin/python tests/data/capture_sinfo_samples.py

It runs exactly the argv of ``nsml_hpc.slurm.sinfo.sinfo_command()`` (and
``nsml_hpc.slurm.version.VERSION_COMMAND``) while one 2-GPU job of its own runs, writes their
stdout to tests/data/, and scancels the job.
Other users' jobs may hold GPUs at the same moment: the sample is whatever Slurm said.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from nsml_hpc.slurm.sinfo import sinfo_command
from nsml_hpc.slurm.version import VERSION_COMMAND

DATA = Path(__file__).resolve().parent


def run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout


def main() -> None:
    (DATA / "sinfo_version.txt").write_text(run(list(VERSION_COMMAND)))
    job = run(["sbatch", "--parsable", "--gres=gpu:2", "--output=/dev/null", "--wrap", "sleep 30"])
    job_id = job.strip().split(";")[0]
    try:
        for _ in range(100):
            state = run(["squeue", "--noheader", "--format=%T", f"--jobs={job_id}"]).strip()
            if state == "RUNNING":
                break
            time.sleep(0.3)
        (DATA / "sinfo_nodes_gpus_in_use.txt").write_text(run(sinfo_command()))
    finally:
        subprocess.run(["scancel", job_id], check=False, timeout=30)


if __name__ == "__main__":
    main()
