"""Re-capture the cluster-view samples (sinfo GPUs per node, the user's queue) from the sandbox.

Run from the repository root as a user that may submit (root in the sandbox):

    .venv/bin/python tests/data/capture_cluster_samples.py

It submits three short GPU jobs (1, 2 and 4 GPUs; the last one has to wait), runs exactly the
argv that ``sinfo_command()`` and ``user_queue_command(user)`` build while two of them run,
writes the output to tests/data/, and scancels what it submitted. About 10 seconds.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import time
from pathlib import Path

from nsml_hpc.slurm.sinfo import sinfo_command
from nsml_hpc.slurm.timefmt import TIME_FORMAT_ENV
from nsml_hpc.slurm.user_queue import user_queue_command

DATA = Path(__file__).resolve().parent
WORK = Path("/tmp/nsml-hpc-capture")


def run(argv: list[str]) -> str:
    print("running", argv, file=sys.stderr)
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout


def main() -> None:
    os.environ.update(TIME_FORMAT_ENV)  # what the backends run every Slurm command with
    WORK.mkdir(parents=True, exist_ok=True)
    submitted: list[str] = []
    try:
        for gpus, name in ((1, "cap-gpu1"), (2, "cap|pipe"), (4, "cap-gpu4")):
            out = run(
                [
                    "sbatch",
                    "--parsable",
                    f"--chdir={WORK}",
                    f"--output={WORK}/slurm-%j.out",
                    f"--gres=gpu:{gpus}",
                    f"--job-name={name}",
                    "--wrap",
                    "sleep 30",
                ]
            )
            submitted.append(out.strip().split(";")[0])
        time.sleep(5)  # two start, the 4-GPU one waits for Resources
        if "--queue-only" not in sys.argv:  # sinfo shows other users' jobs on a shared sandbox
            (DATA / "sinfo_gpus_busy.txt").write_text(run(sinfo_command()), encoding="utf-8")
        queue = run(user_queue_command(getpass.getuser()))
        # Only this script's own jobs: others may share the sandbox's account.
        mine = [line for line in queue.splitlines() if line.split("|", 1)[0] in submitted]
        (DATA / "squeue_user_queue.txt").write_text("".join(f"{x}\n" for x in mine), "utf-8")
    finally:
        if submitted:
            subprocess.run(["scancel", *submitted], check=False)


if __name__ == "__main__":
    main()
