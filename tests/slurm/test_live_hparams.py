"""Hyperparameters changed while a session runs, on the real sandbox, locally and over SSH:
``nsml-hpc set`` while the job trains, the job takes the change within the documented delay
(one stat interval plus the time between two of the script's looks) and records the step, it
keeps training with the new value, and a fork starts from it. Every refused ``set`` is one
line and writes nothing."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from nsml_hpc.catalog.hparam_events import taken_changes
from nsml_hpc.catalog.metrics import metric_rows
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.cli import main
from nsml_hpc.config.settings import load_settings
from nsml_hpc.job.layout import HPARAM_INTERVAL_ENV, HPARAMS_FILE
from nsml_hpc.sessions.actions import sync_now
from nsml_hpc.workspace import Workspace
from tests.helpers import wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

# Trains until it has run AFTER steps with a changed learning rate (or gives up): the change
# arrives through hparam() and through the callback, which applies it to an "optimizer".
TRAIN = """
    import argparse, json, time, nsml_hpc
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    optimizer = {"lr": args.lr}
    applied = []

    @nsml_hpc.on_hparam_change
    def apply(changes):
        if "lr" in changes:
            optimizer["lr"] = changes["lr"]
            applied.append(changes["lr"])

    after, step = None, 0
    while step < 600:
        lr = nsml_hpc.hparam("lr", args.lr)
        nsml_hpc.report(step=step, lr=lr, optimizer_lr=optimizer["lr"])
        if lr != args.lr and after is None:
            after = step
        if after is not None and step >= after + 10:
            break
        step += 1
        time.sleep(0.1)
    with nsml_hpc.save(step=step) as folder:
        (folder / "optimizer.json").write_text(json.dumps(optimizer))
    print(json.dumps({"applied": applied, "last_step": step}), flush=True)
"""


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _wait_for_steps(workspace: Workspace, name: str, steps: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sync_now(workspace)
        record = get_session(workspace.catalog, name)
        if record.last_step is not None and record.last_step >= steps:
            return
        time.sleep(0.3)
    raise AssertionError(f"{name} did not report {steps} steps")


def _refusals(name: str, run_dir: Path, capsys: pytest.CaptureFixture[str], cluster: str) -> None:
    """Bad changes of a running session: one line each, exit 2, nothing written."""
    before = (run_dir / HPARAMS_FILE).read_bytes() if (run_dir / HPARAMS_FILE).exists() else None
    for argv, words in (
        (["set", name, "momentum=0.9"], "has no hyperparameter 'momentum'"),
        (["set", name, "lr=fast"], "lr is a number"),
        (["set", name, "epochs=2.5"], "epochs is a whole number"),
        (["set", name, "lr=0.01\n0.02"], "newline"),
        (["set", name, "--add", "lr=0.5"], "already has 'lr'"),
        (["set", name], "at least one change"),
        (["set", name, "lr"], "KEY=VALUE"),
    ):
        code, out, err = _run([*argv, "--no-sync", "--cluster", cluster], capsys)
        assert code == 2, (argv, err)
        assert out == ""
        assert len(err.strip().splitlines()) == 1 and words in err, (argv, err)
    after = (run_dir / HPARAMS_FILE).read_bytes() if (run_dir / HPARAMS_FILE).exists() else None
    assert after == before


def _change_and_fork(
    workspace: Workspace,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
    cluster: str,
    interval: float,
) -> None:
    write_script(project_dir, "train.py", TRAIN)
    code, out, err = _run(
        ["submit", "--cluster", cluster, "train.py", "--lr", "0.1", "--epochs", "3"], capsys
    )
    assert code == 0, err
    name = out.split()[1]
    _wait_for_steps(workspace, name, 5)
    record = get_session(workspace.catalog, name)
    run_dir = Path(record.run_dir)
    _refusals(name, run_dir, capsys, cluster)

    written_at = time.time()
    code, out, err = _run(["set", name, "lr=0.01", "--cluster", cluster], capsys)
    assert code == 0, err
    assert "lr 0.1 -> 0.01 (version 1)" in out
    document = json.loads((run_dir / HPARAMS_FILE).read_text())
    assert document["version"] == 1 and document["values"] == {"lr": 0.01}

    record = wait_for_state(workspace, name, {"COMPLETED", "FAILED"}, timeout=120)
    assert record.state == "COMPLETED", run_dir / f"slurm-{record.id}.out"
    sync_now(workspace)
    assert record.id is not None
    (change,) = taken_changes(workspace.catalog, [record.id])[record.id]
    assert change.changes == {"lr": 0.01} and change.previous == {"lr": 0.1}
    assert change.version == 1 and change.step is not None

    # The event's step is the first step trained with the new value, and training went on.
    points = metric_rows(workspace.catalog, record.id)
    lrs = {p.step: p.value for p in points if p.name == "lr"}
    applied = {p.step: p.value for p in points if p.name == "optimizer_lr"}
    assert all(lrs[s] == pytest.approx(0.1) for s in lrs if s is not None and s < change.step)
    assert all(lrs[s] == pytest.approx(0.01) for s in lrs if s is not None and s >= change.step)
    assert all(applied[s] == pytest.approx(0.01) for s in applied if s and s >= change.step)
    assert max(s for s in lrs if s is not None) == change.step + 10

    # Within the documented delay: one interval plus the time between two looks.
    times = sorted(p.time for p in points if p.name == "lr" and p.time is not None)
    gap = max(b - a for a, b in itertools.pairwise(times))
    assert change.at is not None
    assert change.at - written_at <= interval + gap + 1.0, (change.at - written_at, gap)

    # show lists the change with its step.
    code, out, err = _run(["show", name, "--no-sync"], capsys)
    assert code == 0, err
    assert f"at step {change.step}: lr 0.1 -> 0.01 (version 1)" in out

    # A finished session refuses a change (one line, nothing written).
    code, out, err = _run(["set", name, "lr=0.5", "--cluster", cluster], capsys)
    assert code == 2 and "COMPLETED" in err and len(err.strip().splitlines()) == 1
    assert json.loads((run_dir / HPARAMS_FILE).read_text())["version"] == 1

    # The fork starts from the value the parent was changed to.
    code, out, err = _run(["fork", name], capsys)
    assert code == 0, err
    assert "lr: 0.1 -> 0.01" in out
    child = out.split()[1]
    child_record = get_session(workspace.catalog, child)
    spec = json.loads(child_record.spec_json)
    assert spec["args"] == ["--lr", "0.01", "--epochs", "3"]
    assert json.loads(child_record.hyperparameters_json)["lr"] == 0.01
    child_record = wait_for_state(workspace, child, {"COMPLETED", "FAILED"}, timeout=120)
    assert child_record.id is not None
    first = [p for p in metric_rows(workspace.catalog, child_record.id) if p.name == "lr"]
    assert first and all(p.value == pytest.approx(0.01) for p in first)

    # compare and diff show the parent's value history beside the child's value.
    history = f"0.1 → 0.01@{change.step}"
    code, out, err = _run(["compare", name, child, "--no-sync", "--format", "csv"], capsys)
    assert code == 0, err
    assert history in out
    code, out, err = _run(["diff", name, child, "--no-code"], capsys)
    assert code == 0, err
    assert f"lr: '{history}' -> 0.01" in out


def test_a_learning_rate_changed_from_the_cli_is_taken_with_its_step_and_forked_locally(
    nsml_env: Path,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(HPARAM_INTERVAL_ENV, "0.5")  # sbatch passes it on to the job
    workspace = Workspace.open(load_settings())
    try:
        _change_and_fork(workspace, project_dir, capsys, "local", interval=0.5)
    finally:
        workspace.close()


def test_a_learning_rate_changed_over_ssh_is_taken_with_its_step_and_forked(
    remote_workspace: Workspace,
    ssh_cluster: str,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The job runs as alice on "the cluster" with the default interval (2 s).
    _change_and_fork(remote_workspace, project_dir, capsys, ssh_cluster, interval=2.0)
