"""One task of a multi-node launch: ``python -m nsml_hpc.job RUN_DIR --task [-- LAUNCHER...]``.

srun starts this on every node (docs/multi-node.md): once per rank in the srun modes, once per
node for torchrun. It runs one rank of the training script (srun modes: ``RANK`` =
``SLURM_PROCID``, ``LOCAL_RANK`` = ``SLURM_LOCALID``, ``WORLD_SIZE`` = the step's tasks,
``NODE_RANK`` = ``SLURM_NODEID``; ``MASTER_ADDR``/``MASTER_PORT`` come from the batch script),
or torchrun with the script (``torchrun`` is run as ``<the session's python> -m
torch.distributed.run``, so the interpreter that would run the script runs it). It forwards
signals (USR2 only to a process that catches it, as the job wrapper does), records
``task_started`` and ``task_ended`` (host, node, task, CUDA_VISIBLE_DEVICES, exit code) in a
file of its own that the job wrapper on the first node relays into events.jsonl, and exits
with the rank's (torchrun's) exit code. It does not pick snapshots or requeue: the job wrapper
did the first (its choice arrives in ``NSML_HPC_RESUME_FROM``) and does the second.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from nsml_hpc.job.layout import CODE_DIR, SESSION_FILE, TASKS_DIR, job_id_from_env, relay_file
from nsml_hpc.job.wrapper import EventLog, catches, command_for, restart_count

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGCONT, signal.SIGUSR2)
TORCHRUN = "torchrun"


def _int_env(name: str, default: int = 0) -> int:
    text = os.environ.get(name, "").strip()
    return int(text) if text.isdigit() else default


def tasks_on_this_node() -> int:
    """The first count of ``SLURM_STEP_TASKS_PER_NODE`` (``2(x2)`` -> 2)."""
    text = os.environ.get("SLURM_STEP_TASKS_PER_NODE") or os.environ.get(
        "SLURM_TASKS_PER_NODE", "1"
    )
    digits = ""
    for char in text:
        if not char.isdigit():
            break
        digits += char
    return int(digits) if digits else 1


def rank_environment() -> dict[str, str]:
    """The torch.distributed ``env://`` variables for this srun task."""
    return {
        "RANK": str(_int_env("SLURM_PROCID")),
        "LOCAL_RANK": str(_int_env("SLURM_LOCALID")),
        "WORLD_SIZE": str(_int_env("SLURM_STEP_NUM_TASKS", _int_env("SLURM_NTASKS", 1))),
        "LOCAL_WORLD_SIZE": str(tasks_on_this_node()),
        "NODE_RANK": str(_int_env("SLURM_NODEID")),
    }


def task_command(document: dict[str, Any], code_dir: Path, launcher: list[str]) -> list[str]:
    """The rank's command (no launcher), or the launcher followed by the script."""
    command = command_for(document, code_dir)
    if not launcher:
        return command
    if launcher[0] == TORCHRUN:
        python = document.get("interpreter") or sys.executable
        script = command[1:] if command[0] == python else ["--no-python", *command]
        return [python, "-m", "torch.distributed.run", *launcher[1:], *script]
    return [*launcher, *command]


class Task:
    def __init__(self, run_dir: Path, launcher: list[str]) -> None:
        self.run_dir = run_dir
        self.document: dict[str, Any] = json.loads((run_dir / SESSION_FILE).read_text("utf-8"))
        self.launcher = launcher
        self.task = _int_env("SLURM_PROCID")
        path = run_dir / relay_file(TASKS_DIR, job_id_from_env(), restart_count(), self.task)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.events = EventLog(run_dir, path)
        self.child: subprocess.Popen[bytes] | None = None
        self.where = {
            "host": socket.gethostname(),
            "node": _int_env("SLURM_NODEID"),
            "task": self.task,
        }

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        if signum == signal.SIGUSR2 and not catches(child.pid, signum):
            return  # its default action would end the rank; the flag file tells it instead
        child.send_signal(signum)

    def run(self) -> int:
        code_dir = self.run_dir / CODE_DIR
        env = dict(os.environ)
        if not self.launcher:
            env.update(rank_environment())
        command = task_command(self.document, code_dir, self.launcher)
        self.events.write(
            "task_started",
            **self.where,
            local_task=_int_env("SLURM_LOCALID"),
            restart_count=restart_count(),
            cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
            launcher=self.launcher[0] if self.launcher else "srun",
            pid=os.getpid(),
        )
        for signum in FORWARDED:
            signal.signal(signum, self._forward)
        try:
            self.child = subprocess.Popen(command, cwd=code_dir, env=env)
        except OSError as exc:
            self.events.write("task_ended", **self.where, exit_code=127, error=str(exc))
            print(f"nsml-hpc: cannot start {command[0]}: {exc}", file=sys.stderr)
            return 127
        returncode = self.child.wait()
        exit_code = returncode if returncode >= 0 else 128 - returncode
        self.events.write(
            "task_ended",
            **self.where,
            exit_code=exit_code,
            signal=signal.Signals(-returncode).name if returncode < 0 else None,
        )
        return exit_code


def run_task(run_dir: Path, launcher: list[str]) -> int:
    return Task(run_dir, launcher).run()
