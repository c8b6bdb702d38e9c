"""GPU utilisation sampling inside the job (stdlib only; started by the job wrapper).

When ``nvidia-smi`` exists on the node, every ``interval`` seconds one query for the
session's GPUs is appended to ``<run_dir>/gpu.jsonl``. Every call is time-boxed; a hanging or
garbage-printing ``nvidia-smi`` costs one warning line and never stops the training.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from nsml_hpc.job.layout import GPU_FILE, GPU_INTERVAL_ENV

QUERY = "index,utilization.gpu,memory.used,memory.total"
CALL_TIMEOUT = 10.0
DEFAULT_INTERVAL = 60.0


@dataclass(frozen=True)
class GpuSample:
    index: int
    util: float  # percent
    mem_used: float  # MiB
    mem_total: float  # MiB


def parse_nvidia_smi(text: str) -> list[GpuSample]:
    """``--format=csv,noheader,nounits`` lines; raises ValueError on anything else."""
    samples: list[GpuSample] = []
    for line in text.strip().splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 4:
            raise ValueError(f"unexpected nvidia-smi line {line!r}")
        index, util, used, total = fields
        samples.append(GpuSample(int(index), float(util), float(used), float(total)))
    if not samples:
        raise ValueError("nvidia-smi printed no GPU")
    return samples


def query_command(visible_devices: str | None) -> list[str]:
    argv = ["nvidia-smi", f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"]
    if visible_devices:
        argv.append(f"--id={visible_devices}")
    return argv


def sample_once(visible_devices: str | None) -> list[GpuSample]:
    done = subprocess.run(
        query_command(visible_devices),
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise ValueError(f"nvidia-smi exited {done.returncode}: {done.stderr.strip()[:200]}")
    return parse_nvidia_smi(done.stdout)


class GpuMonitor:
    """A daemon thread writing one ``gpu.jsonl`` line per interval."""

    def __init__(self, run_dir: Path, interval: float, visible_devices: str | None) -> None:
        self.path = run_dir / GPU_FILE
        self.interval = interval
        self.visible_devices = visible_devices
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="nsml-gpu-monitor", daemon=True)
        self.warned = False

    @classmethod
    def start_if_available(cls, run_dir: Path) -> GpuMonitor | None:
        if shutil.which("nvidia-smi") is None:
            return None
        interval = float(os.environ.get(GPU_INTERVAL_ENV, DEFAULT_INTERVAL))
        monitor = cls(run_dir, max(interval, 1.0), os.environ.get("CUDA_VISIBLE_DEVICES"))
        monitor.thread.start()
        return monitor

    def _write(self, line: dict[str, object]) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(line) + "\n").encode())
        finally:
            os.close(fd)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                samples = sample_once(self.visible_devices)
            except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
                if not self.warned:
                    self.warned = True
                    self._write({"time": time.time(), "warning": str(exc)[:300]})
            else:
                self._write({"time": time.time(), "gpus": [asdict(s) for s in samples]})
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
