"""A session from submit to a real Slurm and back: GPUs, states, metrics, logs, stop, rm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nsml_hpc.catalog.metrics import metric_lines
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.cli import main
from nsml_hpc.errors import NotFoundError
from nsml_hpc.sessions.actions import read_logs, remove_session, stop_session
from nsml_hpc.sessions.views import session_detail, session_rows
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

# Holds its GPUs until the test creates the release file (at most two minutes), so the
# pending check does not race the running jobs' end.
HOLD_UNTIL_RELEASED = """
    import os, sys, time
    deadline = time.time() + 120
    while not os.path.exists(sys.argv[1]) and time.time() < deadline:
        time.sleep(0.2)
"""

DEVICE_SCRIPT = """
    import os, nsml_hpc
    ids = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d]
    print("devices", os.environ.get("CUDA_VISIBLE_DEVICES"))
    nsml_hpc.report(step=0, visible_gpus=len(ids))
"""


def test_two_gpu_session_sees_exactly_two_devices(workspace: Workspace, project_dir: Path) -> None:
    write_script(project_dir, "devices.py", DEVICE_SCRIPT)
    done = submit_script(workspace, project_dir, "devices.py", gpus=2)
    record = wait_for_state(workspace, done.name, {"COMPLETED", "FAILED"})
    assert record.state == "COMPLETED"
    assert json.loads(record.last_metrics_json) == {"visible_gpus": 2}
    detail = session_detail(workspace.catalog, done.name)
    started = [event for event in detail["events"] if event["event"] == "started"]
    assert len(started[0]["cuda_visible_devices"].split(",")) == 2
    assert "#SBATCH --gres=gpu:2" in (done.run_dir / "job.sbatch").read_text()


def test_third_two_gpu_session_pends_for_resources_then_runs(
    workspace: Workspace, project_dir: Path
) -> None:
    release = write_script(project_dir, "hold.py", HOLD_UNTIL_RELEASED).with_name("release")
    names = [
        submit_script(workspace, project_dir, "hold.py", [str(release)], gpus=2).name
        for _ in range(3)
    ]
    first, second, third = names
    wait_for_state(workspace, first, {"RUNNING"})
    wait_for_state(workspace, second, {"RUNNING"})
    pending = wait_for_state(workspace, third, {"PENDING"}, reason="Resources")
    assert pending.reason == "Resources"
    rows = {row.name: row for row in session_rows(workspace.catalog)}
    assert rows[third].state_text == "PENDING (Resources)"
    release.touch()
    for name in names:
        assert wait_for_state(workspace, name, {"COMPLETED"}, timeout=120).state == "COMPLETED"


def test_ps_shows_the_pending_reason(
    workspace: Workspace, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = write_script(project_dir, "hold.py", HOLD_UNTIL_RELEASED).with_name("release")
    names = [
        submit_script(workspace, project_dir, "hold.py", [str(release)], gpus=2).name
        for _ in range(3)
    ]
    wait_for_state(workspace, names[0], {"RUNNING"})
    wait_for_state(workspace, names[2], {"PENDING"}, reason="Resources")
    capsys.readouterr()
    assert main(["ps", "--json"]) == 0
    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed[names[2]]["state_text"] == "PENDING (Resources)"
    release.touch()
    for name in names:
        wait_for_state(workspace, name, {"COMPLETED"}, timeout=120)


def test_failing_script_is_failed_with_its_exit_code(
    workspace: Workspace, project_dir: Path
) -> None:
    write_script(project_dir, "fail.py", "import sys\nprint('about to fail')\nsys.exit(3)\n")
    done = submit_script(workspace, project_dir, "fail.py")
    record = wait_for_state(workspace, done.name, {"FAILED", "COMPLETED"})
    assert (record.state, record.exit_code) == ("FAILED", 3)
    row = next(row for row in session_rows(workspace.catalog) if row.name == done.name)
    assert row.state_text == "FAILED (exit 3)"
    assert b"about to fail" in b"".join(read_logs(workspace, done.name))


def test_stop_cancels_a_running_session(workspace: Workspace, project_dir: Path) -> None:
    write_script(project_dir, "long.py", "import time\ntime.sleep(300)\n")
    done = submit_script(workspace, project_dir, "long.py")
    wait_for_state(workspace, done.name, {"RUNNING"})
    assert stop_session(workspace, done.name) == [done.job_id]
    record = wait_for_state(workspace, done.name, {"CANCELLED", "FAILED", "COMPLETED"})
    assert record.state == "CANCELLED"


def test_completed_session_metrics_equal_the_metrics_file_point_for_point(
    workspace: Workspace, project_dir: Path
) -> None:
    write_script(
        project_dir,
        "learn.py",
        """
        import math, nsml_hpc
        for step in range(500):
            nsml_hpc.report(step=step, loss=1 / (step + 1), acc=math.tanh(step / 100), lr=0.1)
        """,
    )
    done = submit_script(workspace, project_dir, "learn.py")
    record = wait_for_state(workspace, done.name, {"COMPLETED", "FAILED"})
    assert record.state == "COMPLETED"
    assert record.id is not None
    wait_for_state(workspace, done.name, {"COMPLETED"})  # one more sync: nothing doubles
    in_file = [
        json.loads(line) for line in (done.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    in_catalog = metric_lines(workspace.catalog, record.id)
    assert len(in_file) == 500
    assert in_catalog == in_file


def test_example_training_script_learns_on_the_sandbox(
    workspace: Workspace, project_dir: Path
) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "train_spirals.py"
    (project_dir / "train_spirals.py").write_bytes(example.read_bytes())
    done = submit_script(workspace, project_dir, "train_spirals.py", ["--lr", "0.5"], gpus=1)
    record = wait_for_state(workspace, done.name, {"COMPLETED", "FAILED"}, timeout=120)
    assert record.state == "COMPLETED"
    last = json.loads(record.last_metrics_json)
    assert last["val_acc"] > 0.9
    assert record.last_step == 120


def test_logs_follow_streams_until_the_session_ends(
    workspace: Workspace, project_dir: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    write_script(
        project_dir,
        "talk.py",
        "import time\nfor i in range(4):\n    print('line', i, flush=True)\n    time.sleep(0.5)\n",
    )
    done = submit_script(workspace, project_dir, "talk.py")
    assert main(["logs", "-f", done.name]) == 0
    out = capsysbinary.readouterr().out
    assert all(f"line {i}".encode() in out for i in range(4))
    assert get_session(workspace.catalog, done.name).state == "COMPLETED"


def test_rm_purge_deletes_the_catalog_rows_and_the_run_directory(
    workspace: Workspace, project_dir: Path
) -> None:
    write_script(project_dir, "quick.py", "print('hi')\n")
    done = submit_script(workspace, project_dir, "quick.py")
    wait_for_state(workspace, done.name, {"COMPLETED"})
    removed = remove_session(workspace, done.name, purge=True)
    assert removed.purged
    assert not done.run_dir.exists()
    with pytest.raises(NotFoundError):
        get_session(workspace.catalog, done.name)


def test_rm_refuses_a_live_session(workspace: Workspace, project_dir: Path) -> None:
    write_script(project_dir, "long.py", "import time\ntime.sleep(300)\n")
    done = submit_script(workspace, project_dir, "long.py")
    try:
        assert main(["rm", done.name]) == 2
        assert done.run_dir.exists()
    finally:
        stop_session(workspace, done.name)
        wait_for_state(workspace, done.name, {"CANCELLED"})
