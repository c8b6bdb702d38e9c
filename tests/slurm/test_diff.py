"""`nsml-hpc diff` on two real sessions whose code and hyperparameters differ."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsml_hpc.cli import main
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]


def test_diff_shows_hyperparameters_resources_and_code(
    workspace: Workspace, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(project_dir, "train.py", "print('v1')\n")
    first = submit_script(workspace, project_dir, "train.py", ["--lr", "0.1"])
    write_script(project_dir, "train.py", "print('v2')\n")
    second = submit_script(workspace, project_dir, "train.py", ["--lr", "0.01"], gpus=1)
    for name in (first.name, second.name):
        wait_for_state(workspace, name, {"COMPLETED"})
    capsys.readouterr()
    assert main(["diff", first.name, second.name]) == 0
    out = capsys.readouterr().out
    assert "  lr: 0.1 -> 0.01" in out
    assert "  resources.gpus: 0 -> 1" in out
    assert "-print('v1')\n+print('v2')" in out
    assert main(["diff", first.name, "itest/999"]) == 3
