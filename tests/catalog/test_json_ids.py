"""``submit --json`` and ``fork --json`` print the ids they created as one JSON document
(name, job id, cluster, run dir; fork also its parent, snapshot, step and changes), checked
on the backend seam's own fake (a real catalog, real run directories, sbatch in memory); and
``submit --json --follow`` is refused before anything is submitted. Submitting to real Slurm
is tested in tests/slurm."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsml_hpc.backends.fake import FakeBackend
from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.cli import main
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.job.snapshot_store import PendingSnapshot
from nsml_hpc.snapshots.sync import refresh_session
from nsml_hpc.workspace import Workspace


@pytest.fixture
def slurm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBackend]:
    """Every command's workspace gets this fake for its clusters (one Slurm for the test)."""
    backend = FakeBackend(files=LocalFiles())

    def make_backend(profile: ClusterProfile, **_: object) -> FakeBackend:
        return backend

    monkeypatch.setattr("nsml_hpc.context.make_backend", make_backend)
    yield backend


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_submit_and_fork_json_name_what_they_created(
    slurm: FakeBackend,
    workspace: Workspace,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (project_dir / "train.py").write_text("print('hi')\n")
    code, out, err = _run(["submit", "--json", "train.py", "--lr", "0.1", "--amp"], capsys)
    assert code == 0, err
    created = json.loads(out)  # the whole of stdout is one JSON document
    assert set(created) == {"name", "job_id", "cluster", "run_dir"}
    assert created["name"] == "proj/1" and created["cluster"] == "local"
    assert list(slurm.jobs) == [created["job_id"]]
    assert slurm.submitted == [f"{created['run_dir']}/job.sbatch"]
    record = get_session(workspace.catalog, created["name"])
    assert record.run_dir == created["run_dir"] and record.cluster == "local"
    assert workspace.session(created["name"]).job_ids == [created["job_id"]]
    assert (Path(created["run_dir"]) / "session.json").is_file()

    # The job ran and saved a snapshot at step 7.
    pending = PendingSnapshot.begin(Path(record.run_dir) / "snapshots", "ep7")
    (pending.folder / "model.bin").write_bytes(b"weights")
    pending.commit(
        step=7,
        metrics={"val_loss": 0.5},
        job_id=created["job_id"],
        session=record.name,
        restart_count=0,
    )
    assert record.id is not None
    refresh_session(workspace.catalog, LocalFiles(), record.id, record.name, record.run_dir, 0.0)

    code, out, err = _run(
        [
            "fork",
            "proj/1",
            "--snapshot",
            "ep7",
            "--set",
            "lr=0.01",
            "--add",
            "wd=0.1",
            "--no-sync",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    forked = json.loads(out)
    assert set(forked) == {
        "name",
        "job_id",
        "cluster",
        "run_dir",
        "parent",
        "snapshot",
        "step",
        "changes",
    }
    assert forked["name"] == "proj/2" and forked["cluster"] == "local"
    assert forked["parent"] == "proj/1" and forked["snapshot"] == "ep7" and forked["step"] == 7
    assert forked["changes"] == {
        "lr": {"old": "0.1", "new": "0.01"},
        "wd": {"old": None, "new": "0.1"},
    }
    assert list(slurm.jobs) == [created["job_id"], forked["job_id"]]
    child = get_session(workspace.catalog, "proj/2")
    assert child.run_dir == forked["run_dir"]
    assert workspace.session("proj/2").job_ids == [forked["job_id"]]


def test_submit_json_with_follow_is_refused_before_anything_is_submitted(
    slurm: FakeBackend,
    workspace: Workspace,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (project_dir / "train.py").write_text("print('hi')\n")
    runs = workspace.settings.run_root
    for argv in (
        ["submit", "--json", "--follow", "train.py"],
        ["submit", "-f", "--json", "train.py", "--lr", "1"],
    ):
        code, out, err = _run(argv, capsys)
        assert code == 2 and out == ""
        assert err.strip().splitlines() == [
            "nsml-hpc: error: --json and --follow do not go together; follow with: nsml-hpc logs -f"
        ]
    assert slurm.submitted == [] and slurm.jobs == {} and workspace.sessions() == []
    assert not runs.exists() or not any(runs.rglob("session.json"))
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["submit", "--help"])
    usage = " ".join(capsys.readouterr().out.split())
    assert "as JSON; not with -f" in usage and "(not with --json)" in usage
