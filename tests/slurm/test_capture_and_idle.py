"""Zero-code capture and idle-GPU detection, end to end on the real sandbox.

GPUs: our machines have none, so a stand-in ``nvidia-smi`` (a shell script printing fixed
utilisation) is put on the job's PATH; the job wrapper samples it exactly as it would the
real one.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from nsml_hpc.catalog.metrics import metric_rows
from nsml_hpc.cli import main
from nsml_hpc.sessions.actions import stop_idle_sessions, sync_now
from nsml_hpc.sessions.views import session_detail, session_rows
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

TENSORBOARD_SCRIPT = """
    from tensorboardX import SummaryWriter
    writer = SummaryWriter("runs/exp")
    for step in range(20):
        writer.add_scalar("train/loss", 1.0 / (step + 1), step)
        writer.add_scalar("val/acc", step / 20, step)
    writer.close()
"""

CSV_SCRIPT = """
    import csv, os
    os.makedirs("lightning_logs/version_0", exist_ok=True)
    with open("lightning_logs/version_0/metrics.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["epoch", "step", "train_loss", "val_acc"])
        for step in range(10):
            writer.writerow([step // 5, step, 2.0 / (step + 1), ""])
        writer.writerow([1, 9, "", 0.75])
"""


def test_a_tensorboard_logging_script_shows_up_without_changes(
    workspace: Workspace, project_dir: Path
) -> None:
    write_script(project_dir, "train.py", TENSORBOARD_SCRIPT)
    done = submit_script(workspace, project_dir, "train.py")
    record = wait_for_state(workspace, done.name, {"COMPLETED", "FAILED"})
    assert record.state == "COMPLETED"
    assert record.id is not None
    sync_now(workspace)
    points = [(p.step, p.name, p.value) for p in metric_rows(workspace.catalog, record.id)]
    losses = sorted((step, value) for step, name, value in points if name == "train/loss")
    assert [step for step, _ in losses] == list(range(20))
    assert [value for _, value in losses] == pytest.approx([1.0 / (step + 1) for step in range(20)])
    assert len([p for p in points if p[1] == "val/acc"]) == 20
    detail = session_detail(workspace.catalog, done.name)
    assert detail["metric_sources"]["train/loss"].startswith("tensorboard:code/runs/exp/")
    assert detail["last_metrics"]["val/acc"] == pytest.approx(19 / 20)


def test_a_csv_logging_script_shows_up_without_changes(
    workspace: Workspace, project_dir: Path
) -> None:
    write_script(project_dir, "train.py", CSV_SCRIPT)
    done = submit_script(workspace, project_dir, "train.py")
    record = wait_for_state(workspace, done.name, {"COMPLETED", "FAILED"})
    assert record.state == "COMPLETED" and record.id is not None
    sync_now(workspace)
    points = metric_rows(workspace.catalog, record.id)
    losses = sorted((p.step, p.value) for p in points if p.name == "train_loss")
    assert [step for step, _ in losses] == list(range(10))
    assert [value for _, value in losses] == pytest.approx([2.0 / (step + 1) for step in range(10)])
    assert [(p.step, p.value) for p in points if p.name == "val_acc"] == [(9, 0.75)]
    detail = session_detail(workspace.catalog, done.name)
    assert detail["metric_sources"]["val_acc"] == "csv:code/lightning_logs/version_0/metrics.csv"


def test_a_corrupt_event_file_is_counted_not_a_failed_sync(
    workspace: Workspace, project_dir: Path
) -> None:
    write_script(
        project_dir,
        "train.py",
        "import os\nos.makedirs('runs', exist_ok=True)\n"
        "open('runs/events.out.tfevents.1.bad', 'wb').write(b'garbage' * 50)\n",
    )
    done = submit_script(workspace, project_dir, "train.py")
    record = wait_for_state(workspace, done.name, {"COMPLETED"})  # every sync on the way passed
    sync_now(workspace)
    record = wait_for_state(workspace, done.name, {"COMPLETED"})
    assert record.malformed_lines == 1  # the bad file, counted once, then skipped
    assert record.metric_count == 0


def _fake_nvidia_smi(folder: Path, utilisation: int) -> Path:
    folder.mkdir()
    script = folder / "nvidia-smi"
    script.write_text(
        f'#!/bin/sh\necho "0, {utilisation}, 1024, 81920"\necho "1, {utilisation}, 1024, 81920"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


HOLD = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]):\n    time.sleep(0.2)\n"


@pytest.mark.parametrize(("utilisation", "flagged"), [(0, True), (90, False)])
def test_idle_gpus_are_flagged_and_busy_ones_are_not(
    utilisation: int,
    flagged: bool,
    workspace: Workspace,
    project_dir: Path,
    nsml_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = _fake_nvidia_smi(tmp_path / "fakebin", utilisation)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")  # the job inherits it
    monkeypatch.setenv("NSML_HPC_GPU_INTERVAL", "1")
    (nsml_env / "config.toml").write_text("idle_gpu_minutes = 0.05\n")  # 3 s
    release = project_dir / "release"
    write_script(project_dir, "hold.py", HOLD)
    done = submit_script(workspace, project_dir, "hold.py", [str(release)], gpus=2)
    try:
        wait_for_state(workspace, done.name, {"RUNNING"})
        deadline_rows = None
        for _ in range(60):
            sync_now(workspace)
            rows = {row.name: row for row in session_rows(workspace.catalog)}
            deadline_rows = rows[done.name]
            if deadline_rows.gpu_util is not None and (
                not flagged or deadline_rows.gpu_idle_s >= 3
            ):
                break
            import time

            time.sleep(0.5)
        assert deadline_rows is not None and deadline_rows.gpu_util == utilisation
        capsys.readouterr()
        assert main(["ps", "--no-sync"]) == 0
        out = capsys.readouterr().out.splitlines()
        line = next(text for text in out if text.startswith(done.name))
        assert ("IDLE" in line) is flagged
        stopped = stop_idle_sessions(workspace, 3.0)
        assert [name for name, _ in stopped] == ([done.name] if flagged else [])
        if flagged:
            record = wait_for_state(workspace, done.name, {"CANCELLED"})
            assert record.state == "CANCELLED"
    finally:
        release.touch()
    lines = (Path(done.run_dir) / "gpu.jsonl").read_text().splitlines()
    assert all("gpus" in json.loads(line) for line in lines)
