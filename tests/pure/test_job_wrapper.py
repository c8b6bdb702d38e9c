"""Pieces of the job wrapper that need no Slurm: where a requeued run's metric lines start,
whether the script catches USR2, and a warning outside Slurm (no job to requeue: the
wrapper says so and the script's own exit code stands). The Slurm paths are proven in
tests/slurm/test_preemption.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nsml_hpc.job.wrapper import catches, close_and_count_lines


def test_a_partial_last_line_is_terminated_before_counting(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step":0}\n{"step":1}\n{"ste')
    assert close_and_count_lines(path) == 3
    assert path.read_bytes().endswith(b'{"ste\n')
    assert close_and_count_lines(path) == 3
    assert close_and_count_lines(tmp_path / "missing.jsonl") == 0


def test_catches_reads_the_handler_mask_of_a_process() -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time\n"
            "signal.signal(signal.SIGUSR2, lambda *a: None)\nprint('ready', flush=True)\n"
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        assert catches(child.pid, signal.SIGUSR2)
        assert not catches(plain.pid, signal.SIGUSR2)
    finally:
        child.kill()
        plain.kill()
        child.wait()
        plain.wait()


SCRIPT = """
import json, time, nsml_hpc
for step in range(600):
    nsml_hpc.report(step=step, loss=1.0)
    if nsml_hpc.should_checkpoint():
        with nsml_hpc.save(step=step) as folder:
            (folder / "w").write_text("1")
        break
    time.sleep(0.05)
"""


def test_a_warning_outside_slurm_checkpoints_and_reports_that_it_cannot_requeue(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "code").mkdir(parents=True)
    (run_dir / "code" / "train.py").write_text(SCRIPT)
    (run_dir / "session.json").write_text(
        json.dumps({"name": "p/1", "spec": {"project": "p", "script": "train.py", "args": []}})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["NSML_HPC_RUN_DIR"] = str(run_dir)
    wrapper = subprocess.Popen([sys.executable, "-m", "nsml_hpc.job", str(run_dir)], env=env)
    time.sleep(1.5)
    wrapper.send_signal(signal.SIGUSR2)
    assert wrapper.wait(timeout=60) == 75  # EX_TEMPFAIL: stopped, and no requeue possible
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    kinds = [event["event"] for event in events]
    assert kinds[:2] == ["started", "signal"]
    assert "checkpointed" in kinds
    assert kinds[-2:] == ["ended", "requeue_failed"]
    assert (run_dir / "snapshots").is_dir()
