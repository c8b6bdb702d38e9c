"""Sweeps on the real sandbox: one job array per sweep, one session per configuration."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.catalog.sessions import jobs_of
from nsml_hpc.cli import main
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.sessions.views import session_rows
from nsml_hpc.submit.create import prepare
from nsml_hpc.sweeps.grid import expand, parse_grid
from nsml_hpc.sweeps.submit import SubmittedSweep, submit_sweep
from nsml_hpc.workspace import Workspace
from tests.helpers import wait_for_state, write_script
from tests.slurm.test_sync_load import CountingRunner

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

REPORT_PARAMS = """
    import nsml_hpc
    hp = nsml_hpc.session.hyperparameters
    nsml_hpc.report(step=0, lr=hp["lr"], bs=hp["bs"], epochs=hp["epochs"])
"""


def run_sweep(
    workspace: Workspace,
    code_root: Path,
    script: str,
    grids: list[str],
    args: list[str] | None = None,
    max_parallel: int | None = None,
) -> SubmittedSweep:
    """What `nsml-hpc sweep` does, on the test's workspace (whose backend counts commands)."""
    spec = SessionSpec(project="sweeptest", script=script, args=args or [])
    prepared = prepare(spec, workspace.settings, code_root)
    configurations = expand([parse_grid(text) for text in grids])
    return submit_sweep(
        prepared,
        configurations,
        workspace.catalog,
        workspace.settings,
        workspace.backend_for("local"),
        max_parallel=max_parallel,
    )


class SmallArraysBackend(CliBackend):
    """The real local backend, on a cluster whose MaxArraySize is 3 (the sandbox's is 1001;
    changing it would mean restarting the shared slurmctld)."""

    def max_array_size(self) -> int:
        return 3


def test_a_two_by_two_grid_is_one_sbatch_call_and_four_sessions(
    workspace: Workspace, project_dir: Path
) -> None:
    runner = CountingRunner()
    workspace.use_backend("local", CliBackend("local", runner))
    write_script(project_dir, "train.py", REPORT_PARAMS)
    done = run_sweep(
        workspace, project_dir, "train.py", ["lr=0.1,0.01", "bs=32,64"], ["--epochs", "3"], 2
    )
    assert runner.calls["sbatch"] == 1
    assert len(done.sessions) == 4 and len(done.array_ids) == 1
    rows = sorted(session_rows(workspace.catalog), key=lambda row: row.name)
    assert len(rows) == 4
    seen = set()
    masters = set()
    for row in rows:
        record = wait_for_state(workspace, row.name, {"COMPLETED", "FAILED"}, timeout=120)
        assert record.state == "COMPLETED"
        metrics = json.loads(record.last_metrics_json)
        assert metrics["epochs"] == 3
        assert json.loads(record.hyperparameters_json) == {
            "epochs": 3,
            "lr": metrics["lr"],
            "bs": metrics["bs"],
        }
        seen.add((metrics["lr"], metrics["bs"]))
        member = json.loads((Path(record.run_dir) / "session.json").read_text())["sweep"]
        table = json.loads((Path(member["dir"]) / "sweep.json").read_text())
        assert table["sessions"][member["index"]]["session"] == row.name
        assert record.id is not None
        masters.add(jobs_of(workspace.catalog, [record.id])[record.id][0].job_id.split("_")[0])
    assert seen == {(0.1, 32), (0.1, 64), (0.01, 32), (0.01, 64)}
    assert masters == set(done.array_ids)


def test_a_sweep_larger_than_max_array_size_is_split_into_arrays(
    workspace: Workspace, project_dir: Path
) -> None:
    runner = CountingRunner()
    workspace.use_backend("local", SmallArraysBackend("local", runner))
    write_script(project_dir, "train.py", "import nsml_hpc\nnsml_hpc.report(step=0, ok=1)\n")
    done = run_sweep(workspace, project_dir, "train.py", ["seed=1,2,3,4,5,6,7"])
    assert runner.calls["sbatch"] == 3  # 3 + 3 + 1 tasks
    assert len(done.sessions) == 7 and len(done.array_ids) == 3
    names = [row.name for row in session_rows(workspace.catalog)]
    arrays: Counter[str] = Counter()
    for name in names:
        record = wait_for_state(workspace, name, {"COMPLETED", "FAILED"}, timeout=120)
        assert record.state == "COMPLETED"
        assert record.id is not None
        job = jobs_of(workspace.catalog, [record.id])[record.id][0]
        arrays[job.job_id.split("_")[0]] += 1
    assert sorted(arrays.values()) == [1, 3, 3]


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (["--grid", "lr="], "empty value"),
        (["--grid", "lr=0.1,0.1"], "duplicated"),
        (["--random", "3", "--range", "lr=1:0"], "greater than MAX"),
        (["--random", "3", "--range", "lr=0:1:log"], "above zero"),
        (["--random", "3"], "--random needs"),
    ],
)
def test_bad_sweep_is_one_error_line_and_creates_nothing(
    space: list[str],
    message: str,
    workspace: Workspace,
    project_dir: Path,
    nsml_env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_script(project_dir, "train.py", "print(1)\n")
    capsys.readouterr()
    assert main(["sweep", "train.py", *space]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err
    assert session_rows(workspace.catalog) == []
    runs = nsml_env / "runs"
    assert not runs.exists() or not any(runs.rglob("session.json"))
