"""Datasets on the real sandbox: pushed once (immutable, versioned, read-only, with a manifest
of sizes and checksums), read by two sessions (one staged to node-local scratch), refused
for deletion while one of them runs, ranked by a dataset leaderboard; pushes over SSH send
only what changed. Every bad input is one line and leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from pathlib import Path

import pytest

from nsml_hpc.catalog.sessions import list_sessions
from nsml_hpc.cli import main
from nsml_hpc.config.settings import load_settings
from nsml_hpc.workspace import Workspace
from tests.helpers import jobs_working_under, wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

READ = """
    import json, os, sys, time, nsml_hpc
    folder = nsml_hpc.session.dataset
    assert str(folder) == os.environ["NSML_HPC_DATASET"]
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    text = (folder / "train.txt").read_text()
    print(json.dumps({"dataset": str(folder), "name": nsml_hpc.session.dataset_name,
                      "files": files}), flush=True)
    nsml_hpc.report(step=0, acc=float(sys.argv[1]), lines=len(text.splitlines()))
    release = sys.argv[2] if len(sys.argv) > 2 else None
    deadline = time.time() + 120
    while release and not os.path.exists(release) and time.time() < deadline:
        time.sleep(0.2)
"""


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _data(folder: Path) -> Path:
    (folder / "images").mkdir(parents=True)
    (folder / "train.txt").write_text("a\nb\nc\n")
    (folder / "images" / "0.png").write_bytes(b"\x89PNG" + bytes(range(200)))
    return folder


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], words: str) -> None:
    code, out, err = _run(argv, capsys)
    assert code in (2, 3), (argv, code, err)
    assert out == "" and len(err.strip().splitlines()) == 1 and words in err, (argv, err)


def _output(run_dir: Path) -> dict[str, object]:
    (log,) = run_dir.glob("slurm-*.out")
    seen: dict[str, object] = json.loads(log.read_text().splitlines()[0])
    return seen


def test_a_dataset_read_by_two_sessions_one_staged_is_kept_while_one_runs_and_ranked(
    nsml_env: Path,
    project_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the job's node-local scratch (sbatch passes it)
    data = _data(tmp_path / "mnist")
    code, out, err = _run(["dataset", "push", "mnist", str(data)], capsys)
    assert code == 0, err
    assert out.startswith("pushed mnist:1: 2 file(s)")
    version_dir = Path(out.split(" -> ")[1].strip())
    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert manifest["name"] == "mnist" and manifest["version"] == 1
    digest = hashlib.sha256((data / "train.txt").read_bytes()).hexdigest()
    assert manifest["files"]["train.txt"][0] == 6 and manifest["files"]["train.txt"][3] == digest
    for path in (version_dir / "data").rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0, path  # read-only

    # The same content again makes no new version.
    code, out, err = _run(["dataset", "push", "mnist", str(data)], capsys)
    assert code == 0 and "already holds exactly this content" in out

    write_script(project_dir, "read.py", READ)
    release = tmp_path / "release"
    code, out, err = _run(["submit", "--dataset", "mnist", "read.py", "0.7", str(release)], capsys)
    assert code == 0, err
    shared = out.split()[1]
    code, out, err = _run(["submit", "--dataset", "mnist:1", "--stage", "read.py", "0.9"], capsys)
    assert code == 0, err
    staged = out.split()[1]

    workspace = Workspace.open(load_settings())
    try:
        record = wait_for_state(workspace, staged, {"COMPLETED", "FAILED"}, timeout=120)
        assert record.state == "COMPLETED"
        seen = _output(Path(record.run_dir))
        assert str(seen["dataset"]).startswith(str(scratch / "nsml-hpc-data-"))
        assert seen["name"] == "mnist:1" and seen["files"] == ["images/0.png", "train.txt"]
        assert list(scratch.iterdir()) == []  # the node-local copy is gone after the job
        shared_dir = Path(wait_for_state(workspace, shared, {"RUNNING"}, timeout=120).run_dir)
        deadline = time.monotonic() + 60
        while not list(shared_dir.glob("slurm-*.out")) or not _output_ready(shared_dir):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert _output(shared_dir)["dataset"] == str(version_dir / "data")

        # Refused while the shared session runs: one line naming it, the version untouched.
        code, out, err = _run(["dataset", "rm", "mnist:1"], capsys)
        assert code == 2 and shared in err and len(err.strip().splitlines()) == 1, err
        assert (version_dir / "manifest.json").is_file()

        code, out, err = _run(
            ["leaderboard", "--dataset", "mnist", "--metric", "acc", "--no-sync"], capsys
        )
        assert code == 0, err
        rows = [line.split() for line in out.splitlines()[2:]]
        assert [(row[1], row[2], row[3]) for row in rows] == [
            (staged, "mnist:1", "0.9"),
            (shared, "mnist:1", "0.7"),
        ]
        code, out, err = _run(["dataset", "show", "mnist", "--no-sync"], capsys)
        assert code == 0 and f"{shared} (RUNNING)" in out and f"{staged} (COMPLETED)" in out

        release.touch()
        wait_for_state(workspace, shared, {"COMPLETED"}, timeout=120)
    finally:
        release.touch()
        workspace.close()
    code, out, err = _run(["dataset", "rm", "mnist:1"], capsys)
    assert code == 0, err
    assert out.startswith("deleted mnist:1")
    assert not version_dir.exists()
    code, out, err = _run(["dataset", "ls", "--no-sync"], capsys)
    assert code == 0 and "no datasets yet" in out


def _output_ready(run_dir: Path) -> bool:
    try:
        _output(run_dir)
    except (ValueError, IndexError):
        return False
    return True


def test_bad_dataset_input_is_one_line_and_leaves_nothing(
    nsml_env: Path,
    project_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _data(tmp_path / "mnist")
    empty = tmp_path / "empty"
    (empty / "nothing").mkdir(parents=True)
    _refused(["dataset", "push", "mnist", str(tmp_path / "missing")], capsys, "does not exist")
    _refused(["dataset", "push", "mnist", str(empty)], capsys, "is empty")
    _refused(["dataset", "push", "../up", str(data)], capsys, "invalid dataset name")
    monkeypatch.setenv("NSML_HPC_MAX_DATASET_GB", "0.0000001")  # 107 bytes
    _refused(["dataset", "push", "mnist", str(data)], capsys, "max_dataset_gb")
    monkeypatch.delenv("NSML_HPC_MAX_DATASET_GB")
    code, out, err = _run(["dataset", "push", "mnist", str(data)], capsys)
    assert code == 0, err
    root = Path(out.split(" -> ")[1].strip()).parent.parent
    _refused(["dataset", "push", "MNIST", str(data)], capsys, "collides with the existing")
    assert sorted(p.name for p in root.iterdir()) == ["mnist"]
    assert sorted(p.name for p in (root / "mnist").iterdir()) == ["1"]  # no temp folder left

    write_script(project_dir, "read.py", READ)
    _refused(["submit", "--dataset", "cifar", "read.py", "1"], capsys, "no dataset 'cifar'")
    _refused(["submit", "--dataset", "mnist:7", "read.py", "1"], capsys, "no version 7")
    _refused(["submit", "--dataset", "mnist:x", "read.py", "1"], capsys, "whole number")
    _refused(["submit", "--stage", "read.py", "1"], capsys, "--stage needs --dataset")
    _refused(["dataset", "rm", "mnist"], capsys, "name the version")
    _refused(["dataset", "rm", "mnist:3"], capsys, "no dataset mnist:3")
    workspace = Workspace.open(load_settings())
    try:
        assert list_sessions(workspace.catalog) == []  # no session row
    finally:
        workspace.close()
    runs = Path(os.environ["NSML_HPC_RUN_ROOT"])
    assert list(runs.rglob("job.sbatch")) == []  # no run directory
    assert jobs_working_under(runs) == []  # no job


@pytest.mark.parametrize("transport", ["paramiko", "openssh"])
def test_a_push_over_ssh_sends_only_what_changed_since_the_last_version(
    transport: str,
    request: pytest.FixtureRequest,
    remote_root: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster = request.getfixturevalue(
        "ssh_cluster" if transport == "paramiko" else "openssh_cluster"
    )
    data = _data(tmp_path / "mnist")
    for index in range(5):
        (data / f"shard-{index}.bin").write_bytes(os.urandom(4096))
    code, out, err = _run(["dataset", "push", "mnist", str(data), "--cluster", cluster], capsys)
    assert code == 0, err
    assert "7 file(s)" in out and "sent 7 file(s), kept 0" in out
    (data / "shard-2.bin").write_bytes(os.urandom(4096))
    (data / "extra.txt").write_text("new\n")
    code, out, err = _run(["dataset", "push", "mnist", str(data), "--cluster", cluster], capsys)
    assert code == 0, err
    assert out.startswith("pushed mnist:2 on") and "sent 2 file(s), kept 6" in out
    version = Path(out.split(" -> ")[1].strip())
    assert str(version).startswith(f"{remote_root}/alice/.datasets/mnist/")
    assert (version / "data" / "extra.txt").read_text() == "new\n"
    assert (version / "data" / "shard-2.bin").read_bytes() == (data / "shard-2.bin").read_bytes()
    assert stat.S_IMODE((version / "data" / "shard-0.bin").stat().st_mode) & 0o222 == 0
    code, out, err = _run(["dataset", "ls", "--cluster", cluster, "--no-sync"], capsys)
    assert code == 0 and "mnist:1" in out and "mnist:2" in out


MULTI_NODE = """
    import json, subprocess, nsml_hpc
    folder = str(nsml_hpc.session.dataset)
    listing = subprocess.run(
        ["srun", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "sh", "-c",
         'echo "$(hostname) $(cat "$1"/train.txt | wc -l) $(ls "$1"/images)"', "sh", folder],
        capture_output=True, text=True, check=True,
    ).stdout.split("\\n")
    print(json.dumps({"dataset": folder, "nodes": sorted(line for line in listing if line)}))
"""


def test_a_staged_dataset_reaches_both_nodes_of_a_two_node_job_through_sbcast(
    nsml_env: Path,
    project_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the sandbox's two-node cluster ``duo`` (reached with its SLURM_CONF): one srun makes
    the folders on both nodes, sbcast sends each file, one srun removes them at the end. (duo's
    nodes share this machine's /tmp, so what each node sees is also what the other wrote; the
    job's own srun reads it on each node.)"""
    monkeypatch.setenv("SLURM_CONF", "/etc/slurm-duo/slurm.conf")
    data = _data(tmp_path / "mnist")
    code, out, err = _run(["dataset", "push", "mnist", str(data)], capsys)
    assert code == 0, err
    write_script(project_dir, "multi.py", MULTI_NODE)
    code, out, err = _run(
        ["submit", "--nodes", "2", "--dataset", "mnist", "--stage", "multi.py"], capsys
    )
    assert code == 0, err
    name = out.split()[1]
    workspace = Workspace.open(load_settings())
    try:
        record = wait_for_state(workspace, name, {"COMPLETED", "FAILED"}, timeout=120)
    finally:
        workspace.close()
    run_dir = Path(record.run_dir)
    assert record.state == "COMPLETED", (run_dir / "events.jsonl").read_text()
    seen = _output(run_dir)
    staged = str(seen["dataset"])
    assert "/nsml-hpc-data-" in staged and staged.endswith("/mnist-1")
    assert seen["nodes"] == ["duo1 3 0.png", "duo2 3 0.png"]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    (staging,) = [event for event in events if event["event"] == "dataset_staged"]
    assert (staging["method"], staging["nodes"], staging["files"]) == ("sbcast", 2, 2)
    assert any(event["event"] == "dataset_unstaged" for event in events)
    assert not Path(staged).exists()
