"""Hostile argument and hyperparameter values reach the training script byte for byte and
are never executed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nsml_hpc.cli import main
from nsml_hpc.sessions.views import session_rows
from nsml_hpc.workspace import Workspace
from tests.helpers import wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

ECHO_ARGS = """
    import json, os, sys
    with open(os.path.join(os.environ["NSML_HPC_RUN_DIR"], "argv.json"), "w") as out:
        json.dump(sys.argv[1:], out)
"""


def hostile_corpus(marker: Path) -> list[str]:
    return [
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"a; touch {marker}",
        f"a && touch {marker} || true",
        "a'; echo foo",
        "a\"b'c",
        "a\n0",
        "line1\nline2\n#SBATCH --uid=0",
        "--lr=$(id)",
        "λ 🚀 ünïcödé",
        "$HOME ~ * ?",
        "\\x00 \\n",
        "",
        " leading and trailing ",
        "x" * 50_000,
    ]


def test_hostile_arguments_reach_the_script_literally(
    workspace: Workspace, project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    corpus = hostile_corpus(marker)
    write_script(project_dir, "echo_args.py", ECHO_ARGS)
    argv = ["submit", "--memo", 'it\'s a "test" $(touch x)', "echo_args.py"]
    for value in corpus:
        argv += ["--value", value]
    assert main(argv) == 0
    name = session_rows(workspace.catalog)[0].name
    record = wait_for_state(workspace, name, {"COMPLETED", "FAILED"})
    assert record.state == "COMPLETED"
    received = json.loads((Path(record.run_dir) / "argv.json").read_text())
    expected = [word for value in corpus for word in ("--value", value)]
    assert received == expected
    assert not marker.exists()
    script = (Path(record.run_dir) / "job.sbatch").read_text()
    assert "touch" not in script and "pwned" not in script
    assert session_rows(workspace.catalog)[0].memo == 'it\'s a "test" $(touch x)'


def test_hostile_environment_paths_are_quoted_not_run(
    workspace: Workspace, project_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned-venv"
    write_script(project_dir, "ok.py", "print('ran')\n")
    venv_path = f"/nonexistent/x'; touch {marker}; echo '"
    assert main(["submit", "--venv", venv_path, "ok.py"]) == 0
    name = session_rows(workspace.catalog)[0].name
    record = wait_for_state(workspace, name, {"COMPLETED", "FAILED"})
    assert record.state == "FAILED"  # the venv does not exist: `source` fails, nothing else runs
    assert not marker.exists()


def test_very_long_argument_over_the_limit_is_refused(
    workspace: Workspace, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(project_dir, "ok.py", "print('ran')\n")
    capsys.readouterr()
    assert main(["submit", "ok.py", "--blob", "y" * 200_000]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "limit" in err
    assert session_rows(workspace.catalog) == []
