"""A sweep's write path above the seam (the fake Slurm, the real local file system and a
SQLite catalog): what each run directory holds and shares, the one job-id marker per array
that lets a sync adopt a sweep whose submit crashed after sbatch, and nothing left behind
when sbatch refuses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import text

from nsml_hpc.backends.fake import FakeBackend
from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.catalog.sessions import get_session, jobs_of
from nsml_hpc.errors import BackendError
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.submit.create import prepare
from nsml_hpc.submit.rundir import read_job_id_marker, sweep_job_id_marker
from nsml_hpc.sweeps.submit import SubmittedSweep, submit_sweep
from nsml_hpc.workspace import Workspace


def _sweep(workspace: Workspace, project_dir: Path, backend: FakeBackend) -> SubmittedSweep:
    (project_dir / "train.py").write_text("print('hi')\n")
    (project_dir / "run.sh").write_text("#!/bin/sh\n")
    (project_dir / "run.sh").chmod(0o755)
    spec = SessionSpec(project="wp", script="train.py", args=["--epochs", "2"])
    prepared = prepare(spec, workspace.settings, project_dir)
    configurations = [{"lr": lr} for lr in ("0.1", "0.01", "0.001")]
    return submit_sweep(prepared, configurations, workspace.catalog, workspace.settings, backend)


def test_each_member_owns_its_code_and_shares_the_array_script_and_manifest(
    workspace: Workspace, project_dir: Path
) -> None:
    backend = FakeBackend(files=LocalFiles())
    workspace.use_backend("local", backend)
    done = _sweep(workspace, project_dir, backend)
    assert len(done.array_ids) == 1 and len(done.sessions) == 3
    (array,) = done.array_ids
    script = done.sweep_dir / "array-0.sbatch"
    manifest = done.sweep_dir / ".nsml" / "code.json"
    codes = []
    for task, name in enumerate(done.sessions):
        record = get_session(workspace.catalog, name)
        run_dir = Path(record.run_dir)
        assert (run_dir / "job.sbatch").samefile(script)  # exactly what was submitted
        assert (run_dir / ".nsml" / "code.json").samefile(manifest)
        code = run_dir / "code" / "train.py"
        assert code.read_text() == "print('hi')\n"
        assert os.stat(run_dir / "code" / "run.sh").st_mode & 0o777 == 0o755
        codes.append(code)
        document = json.loads((run_dir / "session.json").read_text())
        assert document["name"] == name and document["number"] == record.number
        assert document["spec"]["args"] == [
            "--epochs",
            "2",
            "--lr",
            document["sweep"]["parameters"]["lr"],
        ]
        assert document["hyperparameters"]["epochs"] == 2
        assert document["sweep"]["array_task"] == task and document["sweep"]["array_chunk"] == 0
        assert json.loads(record.spec_json) == document["spec"]
        assert record.id is not None
        assert jobs_of(workspace.catalog, [record.id])[record.id][0].job_id == f"{array}_{task}"
        assert not (run_dir / ".nsml" / "job_id").exists()  # one marker per array instead
        assert read_job_id_marker(workspace.backend_for("local").files, str(run_dir)) == (
            f"{array}_{task}"
        )
    assert not codes[0].samefile(codes[1])  # a snapshot per session: a job may edit its own
    marker = sweep_job_id_marker(str(done.sweep_dir), 0)
    assert Path(marker).read_text() == f"{array}\n"


def test_a_run_directory_without_any_marker_has_no_job_id(tmp_path: Path) -> None:
    files = LocalFiles()
    run_dir = tmp_path / "wp" / "4"
    (run_dir / ".nsml").mkdir(parents=True)
    assert read_job_id_marker(files, str(run_dir)) is None
    sweep_dir = tmp_path / "wp" / "sweep-1"
    document = {"sweep": {"dir": str(sweep_dir), "array_chunk": 1, "array_task": 5}}
    (run_dir / "session.json").write_text(json.dumps(document))
    assert read_job_id_marker(files, str(run_dir)) is None  # sbatch never answered
    Path(sweep_job_id_marker(str(sweep_dir), 1)).parent.mkdir(parents=True)
    Path(sweep_job_id_marker(str(sweep_dir), 1)).write_text("oops\n")
    assert read_job_id_marker(files, str(run_dir)) is None
    Path(sweep_job_id_marker(str(sweep_dir), 1)).write_text("812\n")
    assert read_job_id_marker(files, str(run_dir)) == "812_5"
    (run_dir / ".nsml" / "job_id").write_text("99_2\n")  # a session's own marker wins
    assert read_job_id_marker(files, str(run_dir)) == "99_2"


def test_a_refused_sbatch_leaves_no_run_directory_no_row_and_no_sweep_folder(
    workspace: Workspace, project_dir: Path, nsml_env: Path
) -> None:
    backend = FakeBackend(files=LocalFiles())
    backend.fail("submit", error=BackendError("sbatch: error: Batch job submission failed"))
    workspace.use_backend("local", backend)
    with pytest.raises(BackendError, match="submission failed"):
        _sweep(workspace, project_dir, backend)
    with workspace.catalog.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM session")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM job")).scalar() == 0
    project = nsml_env / "runs" / backend.user / "wp"
    assert not project.exists() or list(project.iterdir()) == []
