"""Checkpoints the training code writes itself, on the real sandbox: a Lightning
``ModelCheckpoint`` layout and a ``torch.save`` loop appear in ``model ls`` with their steps
(and metrics), beside nothing the code upload brought; gc keeps and deletes the right ones
with the protections of saved snapshots (pinned, forked from, newest of a live session, still
being written); a file being written cannot be pulled, removed or forked from.

Lightning itself is not installed in the test environment: its wheel is small (849 KB) but
it needs torch (the 2.14 wheel alone is 555 MB, with 2.7 GB of CUDA wheels beside it). The
scripts write files with exactly the names and folder layout ``ModelCheckpoint`` and
``CSVLogger`` produce (``lightning_logs/version_0/checkpoints/epoch=E-step=S.ckpt``,
``last.ckpt``, ``lightning_logs/version_0/metrics.csv``); nothing reads a file's content.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nsml_hpc.cli import main
from nsml_hpc.config.settings import load_settings
from nsml_hpc.workspace import Workspace
from tests.helpers import wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

LIGHTNING = """
    import csv, os, time
    base = "lightning_logs/version_0"
    os.makedirs(f"{base}/checkpoints", exist_ok=True)
    with open(f"{base}/metrics.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["epoch", "step", "val_loss"])
        for epoch, val_loss in enumerate([0.5, 0.3, 0.4]):
            step = (epoch + 1) * 10
            writer.writerow([epoch, step, val_loss])
    for epoch in range(3):
        step = (epoch + 1) * 10
        with open(f"{base}/checkpoints/epoch={epoch}-step={step}.ckpt", "wb") as out:
            out.write(b"lightning" * (epoch + 1))
        time.sleep(0.05)
    with open(f"{base}/checkpoints/last.ckpt", "wb") as out:
        out.write(b"last")
"""

TORCH_LOOP = """
    import os, time, nsml_hpc
    os.makedirs("ckpt", exist_ok=True)
    for step in (100, 200, 300):
        nsml_hpc.report(step=step, loss=1.0 / step)
        with open(f"ckpt/model_step_{step}.pt", "wb") as out:   # torch.save(state, path)
            out.write(b"torch" * step)
        time.sleep(0.05)
"""

LIVE = """
    import os, sys, time
    os.makedirs("ckpt", exist_ok=True)
    for step in (1, 2):
        with open(f"ckpt/step_{step}.pt", "wb") as out:
            out.write(b"x" * 100 * step)
        time.sleep(0.05)
    with open("ckpt/step_3.pt", "wb") as out:          # a save that takes its time
        deadline = time.time() + 120
        while not os.path.exists(sys.argv[1]) and time.time() < deadline:
            out.write(b"y" * 1000)
            out.flush()
            time.sleep(0.2)
"""


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _listing(name: str, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    code, out, err = _run(["model", "ls", name, "--json"], capsys)
    assert code == 0, err
    return {row["tag"]: row for row in json.loads(out)}


def _settled(name: str, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    """The listing once no file is still being written (written within the last seconds)."""
    deadline = time.monotonic() + 30
    while True:
        rows = _listing(name, capsys)
        if all("writing" not in str(row["flags"]) for row in rows.values()):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.5)


def _submit(script: str, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = _run(["submit", script, *args], capsys)
    assert code == 0, err
    return out.split()[1]


def test_lightning_and_torch_checkpoints_are_listed_with_their_steps_and_collected_by_gc(
    nsml_env: Path, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(project_dir, "lightning.py", LIGHTNING)
    write_script(project_dir, "loop.py", TORCH_LOOP)
    (project_dir / "pretrained.pt").write_bytes(b"weights shipped with the code")
    lightning = _submit("lightning.py", capsys)
    loop = _submit("loop.py", capsys)
    workspace = Workspace.open(load_settings())
    try:
        for name in (lightning, loop):
            assert wait_for_state(workspace, name, {"COMPLETED", "FAILED"}).state == "COMPLETED"
    finally:
        workspace.close()

    ckpt = "code/lightning_logs/version_0/checkpoints"
    rows = _settled(lightning, capsys)
    assert {tag: row["step"] for tag, row in rows.items()} == {
        f"{ckpt}/epoch=0-step=10.ckpt": 10,
        f"{ckpt}/epoch=1-step=20.ckpt": 20,
        f"{ckpt}/epoch=2-step=30.ckpt": 30,
        f"{ckpt}/last.ckpt": None,
    }
    assert {row["found"] for row in rows.values()} == {"lightning"}
    assert rows[f"{ckpt}/epoch=1-step=20.ckpt"]["metrics"] == {"epoch": 1.0, "val_loss": 0.3}
    assert rows[f"{ckpt}/last.ckpt"]["latest"] is True
    rows = _settled(loop, capsys)
    assert {tag: (row["step"], row["found"]) for tag, row in rows.items()} == {
        "code/ckpt/model_step_100.pt": (100, "torch"),
        "code/ckpt/model_step_200.pt": (200, "torch"),
        "code/ckpt/model_step_300.pt": (300, "torch"),
    }  # pretrained.pt came with the code: not a checkpoint of the run
    assert rows["code/ckpt/model_step_200.pt"]["metrics"] == {"loss": pytest.approx(1 / 200)}
    assert rows["code/ckpt/model_step_200.pt"]["bytes"] == 1000
    code, out, err = _run(["model", "ls", loop], capsys)
    assert code == 0 and "found:torch,latest" in out

    # Protections: a pinned one and one a session was forked from are kept by any policy.
    code, out, err = _run(["model", "pin", lightning, f"{ckpt}/epoch=2-step=30.ckpt"], capsys)
    assert code == 0, err
    code, out, err = _run(["fork", loop, "--snapshot", "code/ckpt/model_step_100.pt"], capsys)
    assert code == 0, err
    child = out.split()[1]
    Path(nsml_env / "config.toml").write_text(
        '[gc]\nkeep_last = 1\nkeep_best = 1\nbest_metric = "val_loss"\n'
    )
    code, out, err = _run(["gc"], capsys)  # a dry run: names what it would delete
    assert code == 0, err
    assert f"{lightning}:{ckpt}/epoch=0-step=10.ckpt" in out
    code, out, err = _run(["gc", "--yes"], capsys)
    assert code == 0, err
    rows = _listing(lightning, capsys)
    assert sorted(rows) == [
        f"{ckpt}/epoch=1-step=20.ckpt",  # best by val_loss
        f"{ckpt}/epoch=2-step=30.ckpt",  # pinned
        f"{ckpt}/last.ckpt",  # newest
    ]
    rows = _listing(loop, capsys)
    assert sorted(rows) == ["code/ckpt/model_step_100.pt", "code/ckpt/model_step_300.pt"]
    workspace = Workspace.open(load_settings())
    try:
        lightning_dir = Path(wait_for_state(workspace, lightning, {"COMPLETED"}).run_dir)
        loop_dir = Path(wait_for_state(workspace, loop, {"COMPLETED"}).run_dir)
        child_record = wait_for_state(workspace, child, {"COMPLETED", "FAILED"})
    finally:
        workspace.close()
    assert not (lightning_dir / ckpt.removeprefix("code/") / "epoch=0-step=10.ckpt").exists()
    assert not (loop_dir / "code/ckpt/model_step_200.pt").exists()
    assert (loop_dir / "code/pretrained.pt").is_file()
    assert not list(loop_dir.rglob(".nsml-deleting-*"))
    # The child got the file as resume_from (and its code holds no parent checkpoint).
    events = [
        json.loads(line)
        for line in (Path(child_record.run_dir) / "events.jsonl").read_text().splitlines()
    ]
    started = next(event for event in events if event["event"] == "started")
    assert started["resume_tag"] == "code/ckpt/model_step_100.pt" and started["resume_step"] == 100
    uploaded = json.loads((Path(child_record.run_dir) / ".nsml/code.json").read_text())
    assert sorted(uploaded["files"]) == ["lightning.py", "loop.py", "pretrained.pt"]


def test_a_live_sessions_newest_and_a_checkpoint_being_written_are_protected(
    nsml_env: Path, project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(project_dir, "live.py", LIVE)
    release = tmp_path / "release"
    name = _submit("live.py", capsys, str(release))
    try:
        deadline = time.monotonic() + 120
        rows: dict[str, dict[str, object]] = {}
        while time.monotonic() < deadline:
            rows = _listing(name, capsys)
            settled = all(
                "writing" not in str(rows[tag]["flags"])
                for tag in ("code/ckpt/step_1.pt", "code/ckpt/step_2.pt")
                if tag in rows
            )
            if "code/ckpt/step_3.pt" in rows and len(rows) == 3 and settled:
                break
            time.sleep(0.5)
        flags = {tag: row["flags"] for tag, row in rows.items()}
        assert flags == {
            "code/ckpt/step_1.pt": "found:torch",
            "code/ckpt/step_2.pt": "found:torch,latest",
            "code/ckpt/step_3.pt": "found:torch,writing",
        }
        for argv, words in (
            (["model", "pull", name, "code/ckpt/step_3.pt", str(tmp_path)], "being written"),
            (["model", "rm", name, "code/ckpt/step_3.pt"], "being written"),
            (["fork", name, "--snapshot", "code/ckpt/step_3.pt"], "being written"),
            (["model", "rm", name, "code/ckpt/step_2.pt"], "latest"),
        ):
            code, out, err = _run(argv, capsys)
            assert code != 0 and words in err and len(err.strip().splitlines()) == 1, (argv, err)
        assert not (tmp_path / "step_3.pt").exists()
        Path(nsml_env / "config.toml").write_text("[gc]\nkeep_last = 0\n")
        code, out, err = _run(["gc", "--yes"], capsys)
        assert code == 0, err
        assert sorted(_listing(name, capsys)) == ["code/ckpt/step_2.pt", "code/ckpt/step_3.pt"]
        code, out, err = _run(["model", "pull", name, "code/ckpt/step_2.pt", str(tmp_path)], capsys)
        assert code == 0 and out.startswith("pulled"), err
        assert (tmp_path / "step_2.pt").read_bytes() == b"x" * 200
    finally:
        release.touch()
    workspace = Workspace.open(load_settings())
    try:
        assert wait_for_state(workspace, name, {"COMPLETED", "FAILED"}).state == "COMPLETED"
    finally:
        workspace.close()
    rows = _settled(name, capsys)
    assert rows["code/ckpt/step_3.pt"]["flags"] == "found:torch,latest"
