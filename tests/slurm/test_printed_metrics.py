"""Metrics a script only prints, captured from its Slurm output on the real sandbox: the right
steps and values, progress-bar carriage returns and interleaved stderr ignored, a value that
is not a number counted (never fatal), nothing counted twice when the same metric is also
reported, and a pattern for other formats. Capture is opt-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsml_hpc.catalog.metrics import metric_rows
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.cli import main
from nsml_hpc.config.settings import load_settings
from nsml_hpc.sessions.actions import sync_now
from nsml_hpc.workspace import Workspace
from tests.helpers import jobs_working_under, wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

PRINTING = """
    import sys, time, nsml_hpc
    print("Namespace(lr=0.1, batch_size=32)")                 # arguments: not metrics
    for step in range(12):
        epoch = step // 4
        loss = 1.0 / (step + 1)
        for percent in (10, 50, 90):                           # a progress bar on stderr
            print(f"\\r{percent:3d}%|{'#' * (percent // 10):<10}| loss={loss:.2f}",
                  end="", file=sys.stderr, flush=True)
        print(f"\\rWARNING: slow data loader", file=sys.stderr, flush=True)
        nsml_hpc.report(step=step, acc=step / 12)              # reported AND printed
        print(f"epoch {epoch} step {step} loss={loss:.4f} acc={step / 12:.4f}", flush=True)
        time.sleep(0.05)
    print("epoch 2 step 12 loss=abc", flush=True)            # looks like a metric, is not one
    print("\\r 99%|######### | still going", end="", flush=True)  # never ends its line
"""

PATTERNED = """
    for it in range(5):
        print(f"Iter {it * 100}: loss {2.0 / (it + 1):.3f} | throughput 55 img/s", flush=True)
"""


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _finished(workspace: Workspace, name: str) -> int:
    record = wait_for_state(workspace, name, {"COMPLETED", "FAILED"})
    assert record.state == "COMPLETED" and record.id is not None
    sync_now(workspace)
    return record.id


def test_a_printing_scripts_metrics_arrive_with_their_steps_and_values_once(
    nsml_env: Path, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(project_dir, "train.py", PRINTING)
    code, out, err = _run(["submit", "--capture-stdout", "train.py"], capsys)
    assert code == 0, err
    name = out.split()[1]
    code, out, err = _run(["submit", "train.py"], capsys)  # opt-in: without the flag, nothing
    assert code == 0, err
    plain = out.split()[1]
    workspace = Workspace.open(load_settings())
    try:
        session_id = _finished(workspace, name)
        plain_id = _finished(workspace, plain)
        points = metric_rows(workspace.catalog, session_id)
        losses = sorted((p.step, p.value) for p in points if p.name == "loss")
        assert losses == [(step, round(1.0 / (step + 1), 4)) for step in range(12)]
        epochs = sorted((p.step, p.value) for p in points if p.name == "epoch")
        assert epochs == [(step, step // 4) for step in range(12)]
        # acc is reported AND printed: it counts once, as reported (exact, line >= 0).
        accs = [p for p in points if p.name == "acc"]
        assert len(accs) == 12 and all(p.line >= 0 for p in accs)
        assert {p.name for p in points} == {"loss", "epoch", "acc"}
        plain_points = metric_rows(workspace.catalog, plain_id)
        assert {p.name for p in plain_points} == {"acc"}
        # The loss=abc line: counted once as malformed, named in a warning, never fatal.
        assert get_session(workspace.catalog, name).malformed_lines == 1
    finally:
        workspace.close()
    code, out, err = _run(["show", name, "--no-sync"], capsys)
    assert code == 0, err
    assert "loss (stdout:slurm-" in out and "epoch (stdout:slurm-" in out
    assert "acc (stdout" not in out
    assert "stdout      metrics read from the Slurm output" in out


def test_a_pattern_reads_other_formats_and_bad_patterns_are_refused(
    nsml_env: Path, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(project_dir, "train.py", PATTERNED)
    for pattern, words in (
        ("Iter (?P<step>\\d+", "not a regular expression"),
        ("Iter (\\d+): loss (\\S+)", "named group per metric"),
        ("Iter (?P<step>\\d+) (?P<bad-name>x)", "not a regular expression"),
        ("a\nb", "one line"),
    ):
        code, out, err = _run(["submit", "--stdout-pattern", pattern, "train.py"], capsys)
        assert code == 2 and out == "" and words in err and len(err.strip().splitlines()) == 1
    code, out, err = _run(
        ["submit", "--no-capture-stdout", "--stdout-pattern", "(?P<loss>x)", "train.py"], capsys
    )
    assert code == 2 and "contradicts" in err
    assert jobs_working_under(Path(nsml_env / "runs")) == []
    assert list(Path(nsml_env / "runs").rglob("job.sbatch")) == []

    code, out, err = _run(
        [
            "submit",
            "--stdout-pattern",
            r"Iter (?P<step>\d+): loss (?P<loss>\S+) \| throughput (?P<throughput>\d+)",
            "train.py",
        ],
        capsys,
    )
    assert code == 0, err
    name = out.split()[1]
    (nsml_env / "config.toml").write_text("capture_stdout = true\n")  # the config's default
    code, out, err = _run(["submit", "train.py"], capsys)
    assert code == 0, err
    by_default = out.split()[1]
    workspace = Workspace.open(load_settings())
    try:
        points = metric_rows(workspace.catalog, _finished(workspace, name))
        assert sorted((p.step, p.name, p.value) for p in points) == sorted(
            [(it * 100, "loss", pytest.approx(round(2.0 / (it + 1), 3))) for it in range(5)]
            + [(it * 100, "throughput", 55.0) for it in range(5)]
        )
        # The default reading needs a step/epoch word: "Iter" lines are no metrics.
        assert metric_rows(workspace.catalog, _finished(workspace, by_default)) == []
    finally:
        workspace.close()
