"""--partition auto on the real sandbox, which has two partitions on its one node: `small`
(listed first; at most one CPU's worth of jobs) and `debug` (the default)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.cli import main
from nsml_hpc.job.spec import Resources, SessionSpec
from nsml_hpc.sessions.views import session_detail, session_rows
from nsml_hpc.submit.placement import place
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

HOLD = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]):\n    time.sleep(0.2)\n"
SPEC = SessionSpec(project="p", script="t.py", resources=Resources(gpus=1, time="10"))


def test_an_empty_cluster_places_the_job_in_the_first_partition_that_starts_it_now() -> None:
    placement = place(SPEC, CliBackend("local"))
    assert placement.spec.resources.partition == "small"
    assert placement.explanation.startswith("partition small:")


def test_auto_picks_the_partition_with_room_when_another_is_full(
    workspace: Workspace, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = project_dir / "release"
    write_script(project_dir, "hold.py", HOLD)
    blocker = submit_script(
        workspace, project_dir, "hold.py", [str(release)], partition="small", time="10"
    )
    try:
        wait_for_state(workspace, blocker.name, {"RUNNING"})
        placement = place(SPEC, CliBackend("local"))
        assert placement.spec.resources.partition == "debug"
        assert "small: in" in placement.explanation  # full: starts when the blocker's time is up
        write_script(project_dir, "train.py", "print('placed')\n")
        capsys.readouterr()
        assert (
            main(["submit", "--partition", "auto", "--gpus", "1", "--time", "5", "train.py"]) == 0
        )
        captured = capsys.readouterr()
        assert "placement: partition debug: starts now" in captured.err
        name = next(row.name for row in session_rows(workspace.catalog) if row.name != blocker.name)
        assert session_detail(workspace.catalog, name)["spec"]["resources"]["partition"] == "debug"
        assert wait_for_state(workspace, name, {"COMPLETED", "FAILED"}).state == "COMPLETED"
    finally:
        release.touch()
    wait_for_state(workspace, blocker.name, {"COMPLETED"})


def test_no_partition_fits_is_one_error_line(
    workspace: Workspace, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(project_dir, "train.py", "print(1)\n")
    capsys.readouterr()
    assert main(["submit", "--partition", "auto", "--gpus", "8", "train.py"]) == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no partition can run this job" in err and "small:" in err and "debug:" in err
    assert session_rows(workspace.catalog) == []
