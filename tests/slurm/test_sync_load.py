"""Kind to the cluster: one sacct call per cluster per sync, whatever the number of sessions,
and never more often than the poll floor."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from nsml_hpc.backends.base import CommandResult
from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.backends.remote_shell import EnvChanges
from nsml_hpc.backends.runner import LocalRunner
from nsml_hpc.sessions.actions import sync_now
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]


class CountingRunner(LocalRunner):
    """The real local runner, counting the Slurm commands it runs."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def run(
        self, argv: list[str], *, timeout: float, env: EnvChanges | None = None
    ) -> CommandResult:
        self.calls[argv[0]] += 1
        return super().run(argv, timeout=timeout, env=env)


@pytest.mark.parametrize("sessions", [1, 50])
def test_one_sync_is_one_sacct_call(sessions: int, workspace: Workspace, project_dir: Path) -> None:
    # A floor well above one sync's duration: on a busy 2-core machine the first sync of 50
    # fresh sessions alone can take longer than the tests' usual 0.5 s floor.
    workspace.settings = replace(workspace.settings, poll_floor_seconds=5.0)
    runner = CountingRunner()
    workspace.use_backend("local", CliBackend("local", runner))
    write_script(project_dir, "quick.py", "import time\ntime.sleep(1)\n")
    names = [submit_script(workspace, project_dir, "quick.py").name for _ in range(sessions)]
    assert runner.calls == Counter({"sbatch": sessions})

    runner.calls.clear()
    report = sync_now(workspace)
    assert report.queried == ["local"]
    assert runner.calls["sacct"] == 1
    # squeue at most once, and only for pending reasons sacct cannot give
    assert runner.calls["squeue"] <= 1
    assert set(runner.calls) <= {"sacct", "squeue"}

    runner.calls.clear()
    again = sync_now(workspace)  # inside the poll floor: Slurm is not asked
    assert again.skipped_by_floor == ["local"]
    assert runner.calls == Counter()

    for name in names:
        wait_for_state(workspace, name, {"COMPLETED"}, timeout=180)
    assert set(runner.calls) <= {"sacct", "squeue"}
