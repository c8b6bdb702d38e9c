"""Everyday use against the real Slurm sandbox (issue 15): Ctrl-C while following a session
says it keeps running and how to follow it again (and it does keep running); ``sweep
--dry-run`` prints the array script as ``submit --dry-run`` prints its script; the notebook
API submits, sweeps, waits for and stops real jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nsml_hpc.cli import main
from nsml_hpc.client import Client
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script

pytestmark = pytest.mark.slurm

SLEEPER = """
import time
print("started", flush=True)
time.sleep(120)
"""
TRAIN = """
import argparse, nsml_hpc
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
args = parser.parse_args()
for step in range(5):
    nsml_hpc.report(step=step, loss=1.0 / (1 + step * args.lr))
"""


def test_ctrl_c_while_following_says_the_session_keeps_running(
    workspace: Workspace, project_dir: Path
) -> None:
    write_script(project_dir, "sleeper.py", SLEEPER)
    done = submit_script(workspace, project_dir, "sleeper.py", project="follow")
    try:
        follower = subprocess.Popen(
            [sys.executable, "-m", "nsml_hpc", "logs", "-f", done.name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert follower.stderr is not None
        first = follower.stderr.readline()  # the state, at once, whatever it is
        assert first.startswith(f"nsml-hpc: {done.name} is ") and f"job {done.job_id}" in first
        wait_for_state(workspace, done.name, {"RUNNING"})
        time.sleep(1.5)
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=30)
        assert follower.returncode == 130
        assert "started" in out or out == ""  # the job's output, on stdout
        assert f"stopped following {done.name}; the session keeps running" in err
        assert f"Follow it again: nsml-hpc logs -f {done.name}" in err
        assert "Traceback" not in err
        time.sleep(0.6)
        workspace.sync()
        assert workspace.session(done.name).state == "RUNNING"  # it did keep running
    finally:
        workspace.stop(done.name)


def test_sweep_dry_run_prints_the_array_script(
    workspace: Workspace, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(project_dir, "train.py", TRAIN)
    argv = ["sweep", "train.py", "--grid", "lr=0.1,0.01,0.001", "--max-parallel", "2"]
    assert main([*argv, "--dry-run"]) == 0
    captured = capsys.readouterr()
    script = captured.out
    assert script.startswith("#!/bin/bash\n")
    assert "#SBATCH --array=0-2%2" in script
    assert "proj/sweep-1" in script and "proj/1" in script and "proj/3" in script
    assert "lr=0.001" in captured.err and "3 session(s) in one job array" in captured.err
    assert workspace.sessions() == []  # nothing reserved, nothing submitted
    assert not (workspace.settings.run_root / "root" / "proj").exists() or not any(
        (workspace.settings.run_root / "root" / "proj").iterdir()
    )
    # the real sweep submits exactly that script
    assert main([*argv, "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["sweep"] == "proj/sweep-1" and len(created["sessions"]) == 3
    submitted = (Path(created["sweep_dir"]) / "array-0.sbatch").read_text()
    assert submitted == script
    for name in created["sessions"]:
        wait_for_state(workspace, name, {"COMPLETED"}, timeout=180)


def test_the_notebook_api_submits_sweeps_waits_and_stops(
    workspace: Workspace, project_dir: Path
) -> None:
    write_script(project_dir, "train.py", TRAIN)
    write_script(project_dir, "sleeper.py", SLEEPER)
    client = Client(workspace)
    run = client.submit("train.py", ["--lr", "0.5"], project="nb", memo="from a notebook")
    assert run.name == "nb/1" and run.memo == "from a notebook"
    assert run.spec.args == ["--lr", "0.5"] and run.hyperparameters == {"lr": 0.5}
    run.wait(timeout=120, interval=0.6)
    assert run.state == "COMPLETED"
    assert list(run.history()["loss"].round(3)) == [1.0, 0.667, 0.5, 0.4, 0.333]

    members = client.sweep("train.py", grid={"lr": [0.1, 0.2]}, project="nb", max_parallel=1)
    assert [member.name for member in members] == ["nb/2", "nb/3"]
    table = client.sessions(sweep="nb/sweep-2")
    assert sorted(table["params.lr"]) == [0.1, 0.2]
    for member in members:
        member.wait(timeout=180, interval=0.6)
    assert set(client.sessions(project="nb")["state"]) == {"COMPLETED"}

    sleeper = client.submit("sleeper.py", project="nb", time="5")
    assert sleeper.stop() == sleeper.job_ids[-1:]
    sleeper.wait(timeout=120, interval=0.6)
    assert sleeper.state == "CANCELLED"
    with pytest.raises(Exception, match="did you mean 'gpus'"):
        client.submit("train.py", project="nb", gpu=1)
    assert os.environ["NSML_HPC_CATALOG"].startswith("sqlite:///")
