"""compare, leaderboard, plot and gpus over sessions that really ran on the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nsml_hpc.catalog.metrics import metric_rows
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.cli import main
from nsml_hpc.sessions.views import session_rows
from nsml_hpc.workspace import Workspace
from tests.helpers import wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

LEARN = """
    import nsml_hpc
    hp = nsml_hpc.session.hyperparameters
    for step in range(1, 21):
        nsml_hpc.report(step=step, val_loss=hp["lr"] * 100 / step + hp["bs"] / 1000,
                        spike=1000.0 if step == 13 else 1.0)
"""


@pytest.fixture
def swept(workspace: Workspace, project_dir: Path) -> list[str]:
    write_script(project_dir, "train.py", LEARN)
    assert (
        main(
            ["sweep", "train.py", "--project", "cmp", "--grid", "lr=0.1,0.01", "--grid", "bs=32,64"]
        )
        == 0
    )
    names = sorted(row.name for row in session_rows(workspace.catalog))
    for name in names:
        assert wait_for_state(workspace, name, {"COMPLETED", "FAILED"}).state == "COMPLETED"
    return names


def _catalog_best(workspace: Workspace, name: str, metric: str) -> tuple[float, int | None]:
    record = get_session(workspace.catalog, name)
    assert record.id is not None
    points = [
        (p.value, p.step)
        for p in metric_rows(workspace.catalog, record.id)
        if p.name == metric and p.value is not None
    ]
    return min(points)


def test_compare_and_leaderboard_match_the_catalog(
    swept: list[str], workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["compare", "--project", "cmp", "--metric", "val_loss", "--format", "json"]) == 0
    table = {row["session"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(table) == set(swept)
    for name in swept:
        best, step = _catalog_best(workspace, name, "val_loss")
        assert table[name]["val_loss.best"] == pytest.approx(best)
        assert table[name]["val_loss.best_step"] == step == 20
        hp = json.loads(get_session(workspace.catalog, name).hyperparameters_json)
        assert (table[name]["lr"], table[name]["bs"]) == (hp["lr"], hp["bs"])
    assert "epochs" not in table[swept[0]]  # only hyperparameters that differ

    assert (
        main(
            ["leaderboard", "--project", "cmp", "--metric", "val_loss", "--min", "--format", "json"]
        )
        == 0
    )
    board = json.loads(capsys.readouterr().out)
    expected = sorted(swept, key=lambda name: _catalog_best(workspace, name, "val_loss")[0])
    assert [row["session"] for row in board] == expected
    assert main(["leaderboard", "--project", "cmp", "--metric", "val_loss", "--top", "2"]) == 0
    assert len([line for line in capsys.readouterr().out.splitlines() if "cmp/" in line]) == 2


def test_plot_draws_in_the_terminal_and_into_a_png_keeping_spikes(
    swept: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["plot", *swept[:2], "--metric", "spike", "--width", "40", "--no-sync"]) == 0
    out = capsys.readouterr().out
    assert swept[0] in out and swept[1] in out and "1000" in out  # the spike sets the scale
    png = tmp_path / "loss.png"
    assert (
        main(
            [
                "plot",
                *swept,
                "--metric",
                "val_loss",
                "--smooth",
                "3",
                "--png",
                str(png),
                "--no-sync",
            ]
        )
        == 0
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_experiment_input_is_one_clear_line(
    swept: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for argv, code, text in [
        (["leaderboard", "--project", "cmp", "--metric", "nope"], 3, "reported 'nope'"),
        (["compare", swept[0], "--project", "cmp"], 2, "not both"),
        (["compare", "--project", "cmp", "--metric", "nope"], 3, "nope"),
        (["plot", swept[0], "--metric", "nope", "--no-sync"], 3, "nope"),
        (["leaderboard", "--project", "ghost", "--metric", "x"], 3, "ghost"),
    ]:
        capsys.readouterr()
        assert main(argv) == code, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and text in err, err


def test_gpus_lists_each_partition_with_totals_and_pending_demand(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["gpus", "--json"]) == 0
    partitions = {row["partition"]: row for row in json.loads(capsys.readouterr().out)}
    assert {"debug", "small"} <= set(partitions)
    assert partitions["debug"]["total"] == 4 and partitions["debug"]["default"]
    for row in partitions.values():
        assert row["allocated"] + row["idle"] + row["unavailable"] == row["total"]
        assert row["pending_gpus"] >= 0
