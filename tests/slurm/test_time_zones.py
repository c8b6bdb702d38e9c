"""Time without zones: the client runs in Asia/Seoul (ahead of the sandbox's UTC) and in
America/Los_Angeles (behind it), locally and over SSH (where the login shell keeps its own
zone), and the session's state, start and end times and elapsed time are exactly what sacct
reports in epoch seconds; ``show`` prints them in the client's local time."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

NSML_HPC = str(Path(sys.executable).parent / "nsml-hpc")
ZONES = ["Asia/Seoul", "America/Los_Angeles"]
QUICK = """
    import time
    print("started", flush=True)
    time.sleep(3)
"""


def _cli(args: list[str], zone: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NSML_HPC, *args],
        env={**os.environ, "TZ": zone},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _sacct_epochs(job_id: str) -> dict[str, str]:
    """What accounting says, in epoch seconds (read as root on the cluster itself)."""
    done = subprocess.run(
        [
            "sacct",
            "-X",
            "-n",
            "-P",
            f"-j{job_id}",
            "--format=State,Submit,Start,End,ElapsedRaw",
        ],
        env={**os.environ, "SLURM_TIME_FORMAT": "%s", "TZ": "UTC"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    state, submit, start, end, elapsed = done.stdout.strip().split("|")
    return {"state": state, "submit": submit, "start": start, "end": end, "elapsed": elapsed}


def _follow(name: str, zone: str, cwd: Path, timeout: float = 150.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        done = _cli(["show", name, "--json"], zone, cwd)
        assert done.returncode == 0, done.stderr
        assert "error" not in done.stderr and "warning" not in done.stderr, done.stderr
        detail: dict[str, Any] = json.loads(done.stdout)
        if detail["state"] == "COMPLETED" and detail["ended_at"]:
            return detail
        assert detail["state"] in ("SUBMITTED", "PENDING", "RUNNING"), detail["state"]
        assert time.monotonic() < deadline, f"{name} still {detail['state']}"
        time.sleep(1.0)


@pytest.mark.parametrize("cluster_fixture", ["local", "ssh_cluster", "openssh_cluster"])
@pytest.mark.parametrize("zone", ZONES)
def test_a_client_in_another_zone_sees_the_job_finish_at_sacct_s_times(
    zone: str,
    cluster_fixture: str,
    nsml_env: Path,
    project_dir: Path,
    request: pytest.FixtureRequest,
) -> None:
    cluster = "local" if cluster_fixture == "local" else request.getfixturevalue(cluster_fixture)
    write_script(project_dir, "quick.py", QUICK)
    done = _cli(["submit", "--cluster", cluster, "quick.py"], zone, project_dir)
    assert done.returncode == 0, done.stderr
    match = re.match(r"submitted (\S+) \(job (\d+)\)", done.stdout)
    assert match, done.stdout
    name, job_id = match.groups()

    detail = _follow(name, zone, project_dir)
    truth = _sacct_epochs(job_id)
    assert truth["state"] == "COMPLETED"
    (job,) = detail["jobs"]
    assert job["job_id"] == job_id
    assert (job["started_at"], job["ended_at"]) == (float(truth["start"]), float(truth["end"]))
    # The submit time is the client's own clock when sbatch answered: no zone in it either
    # (a zone error would be whole hours off).
    assert abs(job["submitted_at"] - float(truth["submit"])) < 120
    assert (detail["started_at"], detail["ended_at"]) == (
        float(truth["start"]),
        float(truth["end"]),
    )
    assert detail["elapsed_s"] == float(truth["elapsed"])
    assert detail["elapsed_s"] >= 3

    # Shown in the client's own zone.
    text = _cli(["show", name, "--no-sync"], zone, project_dir)
    local = ZoneInfo(zone)
    started = datetime.fromtimestamp(float(truth["start"]), local).strftime("%Y-%m-%d %H:%M:%S")
    ended = datetime.fromtimestamp(float(truth["end"]), local).strftime("%Y-%m-%d %H:%M:%S")
    assert f"started {started}" in text.stdout and f"ended {ended}" in text.stdout, text.stdout
    ps = _cli(["ps", "--no-sync"], zone, project_dir)
    # (the CLUSTER column appears only when several clusters are configured)
    assert re.search(rf"^{re.escape(name)}\s+(\S+\s+)?COMPLETED\b", ps.stdout, re.M), ps.stdout
