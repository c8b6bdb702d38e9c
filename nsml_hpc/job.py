"""The job wrapper: runs on the compute node as ``python -m nsml_hpc.job RUN_DIR``.

It records lifecycle events in ``events.jsonl``, starts the training script with its
arguments exactly as submitted (read from ``session.json``, never through a shell), forwards
signals to it, and exits with its exit code. Standard library only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from nsml_hpc.gpu_monitor import GpuMonitor

EVENTS_FILE = "events.jsonl"
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT)


def job_id_from_env() -> str | None:
    """The id sync knows the job by: ``<array>_<task>`` for an array task, else the job id."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID")


class EventLog:
    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / EVENTS_FILE
        self.job_id = job_id_from_env()

    def write(self, event: str, **data: Any) -> None:
        line = {"event": event, "time": time.time(), "job_id": self.job_id, **data}
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode())
        finally:
            os.close(fd)


def command_for(document: dict[str, Any], code_dir: Path) -> list[str]:
    spec = document["spec"]
    script = str(code_dir / spec["script"])
    args = [str(arg) for arg in spec.get("args", [])]
    if script.endswith(".py"):
        return [document.get("interpreter") or sys.executable, script, *args]
    return [script, *args]


def run(run_dir: Path) -> int:
    document = json.loads((run_dir / "session.json").read_text("utf-8"))
    code_dir = run_dir / "code"
    events = EventLog(run_dir)
    events.write(
        "started",
        host=socket.gethostname(),
        restart_count=int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0),
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        pid=os.getpid(),
    )
    monitor = GpuMonitor.start_if_available(run_dir)
    try:
        child = subprocess.Popen(command_for(document, code_dir), cwd=code_dir)
    except OSError as exc:
        events.write("ended", exit_code=127, error=str(exc))
        print(f"nsml-hpc: cannot start the training script: {exc}", file=sys.stderr)
        return 127

    def forward(signum: int, _frame: FrameType | None) -> None:
        events.write("signal", signal=signal.Signals(signum).name)
        if child.poll() is None:
            child.send_signal(signum)

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    returncode = child.wait()
    if monitor is not None:
        monitor.stop()
    exit_code = returncode if returncode >= 0 else 128 - returncode
    events.write(
        "ended",
        exit_code=exit_code,
        signal=signal.Signals(-returncode).name if returncode < 0 else None,
    )
    return exit_code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m nsml_hpc.job RUN_DIR", file=sys.stderr)
        return 2
    return run(Path(args[0]))


if __name__ == "__main__":
    sys.exit(main())
