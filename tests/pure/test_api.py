"""The in-job API: report() lines, step numbering, validation, and the outside-a-session mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SNIPPET_INSIDE = """
import nsml_hpc
nsml_hpc.report(step=3, loss=0.5, acc=1)
nsml_hpc.report(loss=0.25)
class Scalar:
    def __float__(self): return 0.125
nsml_hpc.report(step=10, loss=Scalar())
print(nsml_hpc.session.name, nsml_hpc.session.hyperparameters, nsml_hpc.session.inside)
"""


def _run(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "session.json").write_text(
        json.dumps({"name": "mnist/3", "project": "mnist", "spec": {"args": ["--lr", "0.1"]}})
    )
    return folder


def _env(**extra: str) -> dict[str, str]:
    import os

    env = {key: value for key, value in os.environ.items() if not key.startswith("NSML_HPC_")}
    env.update(extra)
    return env


def test_report_appends_one_json_line_per_call_with_steps(run_dir: Path) -> None:
    done = _run(SNIPPET_INSIDE, _env(NSML_HPC_RUN_DIR=str(run_dir)))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [3, 4, 10]
    assert lines[0]["loss"] == 0.5 and lines[0]["acc"] == 1
    assert lines[2]["loss"] == 0.125
    assert all(isinstance(line["time"], float) for line in lines)
    assert done.stdout.split(" ", 1)[0] == "mnist/3"
    assert "'lr': 0.1" in done.stdout and done.stdout.strip().endswith("True")


def test_outside_a_session_report_is_a_no_op_and_hyperparameters_come_from_argv(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SNIPPET_INSIDE, "--lr", "0.3"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []
    assert done.stdout.strip() == "None {'lr': 0.3} False"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ("nsml_hpc.report(step=1, loss='high')", "TypeError"),
        ("nsml_hpc.report(step=1, time=3.0)", "ValueError"),
        ("nsml_hpc.report(step='one', loss=1.0)", "TypeError"),
        ("nsml_hpc.report(step=True, loss=1.0)", "TypeError"),
    ],
)
def test_report_refuses_what_is_not_a_metric(call: str, error: str, run_dir: Path) -> None:
    done = _run(f"import nsml_hpc\n{call}", _env(NSML_HPC_RUN_DIR=str(run_dir)))
    assert done.returncode != 0
    assert error in done.stderr.strip().splitlines()[-1]
    assert not (run_dir / "metrics.jsonl").exists() or (run_dir / "metrics.jsonl").read_text() == ""


def test_a_killed_process_keeps_every_reported_line(run_dir: Path) -> None:
    code = (
        "import os, nsml_hpc\nfor i in range(1000):\n    nsml_hpc.report(step=i, x=i)\nos._exit(9)"
    )
    done = _run(code, _env(NSML_HPC_RUN_DIR=str(run_dir)))
    assert done.returncode == 9
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["x"] for line in lines] == list(range(1000))
