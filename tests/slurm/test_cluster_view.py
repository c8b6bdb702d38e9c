"""The cluster view's Slurm paths against the real sandbox: one sinfo for GPUs per partition,
one squeue for the user's queue, shared through the catalog; and a fork that really runs."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.clusters.info import cluster_overview
from nsml_hpc.errors import BackendError
from nsml_hpc.snapshots.fork import ForkRequest, fork_session
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]


def test_sinfo_reports_the_debug_partition_with_its_four_gpus() -> None:
    nodes = CliBackend("local").cluster_gpus()
    debug = [node for node in nodes if node.partition == "debug"]
    assert debug and debug[0].is_default
    assert sum(node.gpus_total for node in debug) == 4
    assert all(0 <= node.gpus_used <= node.gpus_total for node in debug)


def test_the_users_queue_shows_a_pending_and_a_running_session(
    workspace: Workspace, project_dir: Path
) -> None:
    write_script(project_dir, "hold.py", "import time\ntime.sleep(20)\n")
    held = submit_script(workspace, project_dir, "hold.py", time="1")
    wait_for_state(workspace, held.name, {"RUNNING", "PENDING"})
    overview = cluster_overview(workspace, "local", now=time.time())
    assert overview.asked and overview.error is None
    [debug] = [part for part in overview.partitions if part.name == "debug"]
    assert debug.gpus_total == 4
    assert debug.gpus_idle + debug.gpus_allocated + debug.gpus_unavailable == 4
    jobs = {job.job_id: job for job in overview.queue}
    assert held.job_id in jobs
    assert jobs[held.job_id].name == held.name
    again = cluster_overview(workspace, "local", now=time.time())
    assert not again.asked  # inside the floor: answered from the catalog
    CliBackend("local").cancel([held.job_id])


def test_an_unreachable_controller_is_one_clear_backend_error(tmp_path: Path) -> None:
    """A private copy of slurm.conf that points at closed ports: nobody else is disturbed."""
    source = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    lines = [
        line
        for line in source.read_text().splitlines()
        if not line.startswith(("SlurmctldPort=", "AccountingStoragePort="))
    ]
    broken = tmp_path / "slurm.conf"
    broken.write_text("\n".join([*lines, "SlurmctldPort=1", "AccountingStoragePort=1", ""]))
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(broken)
    try:
        with pytest.raises(BackendError, match="sinfo failed on local"):
            CliBackend("local").cluster_gpus()
    finally:
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old


def test_a_fork_runs_with_the_changed_value_and_knows_its_snapshot(
    workspace: Workspace, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_script(
        project_dir,
        "train.py",
        """
        import nsml_hpc
        lr = nsml_hpc.session.hyperparameters["lr"]
        resume = nsml_hpc.session.resume_from
        if resume is None:
            nsml_hpc.report(step=1, loss=1.0)
            with nsml_hpc.save(tag="ep1", step=1) as folder:
                (folder / "weights.txt").write_text("1")
        else:
            assert (resume / "weights.txt").read_text() == "1"
        nsml_hpc.report(step=2, loss=lr, resumed=1.0 if resume else 0.0)
        """,
    )
    parent = submit_script(workspace, project_dir, "train.py", ["--lr", "0.5"])
    assert wait_for_state(workspace, parent.name, {"COMPLETED", "FAILED"}).state == "COMPLETED"
    monkeypatch.chdir(project_dir.parent)
    shutil.rmtree(project_dir)  # the fork must use the parent's code snapshot, not the folder
    request = ForkRequest(parent=parent.name, snapshot="ep1", sets=["lr=0.25"])
    forked = fork_session(workspace, request)
    child = forked.submitted
    assert child is not None and forked.tag == "ep1"
    record = wait_for_state(workspace, child.name, {"COMPLETED", "FAILED"})
    assert record.state == "COMPLETED"
    assert json.loads(record.last_metrics_json) == {"loss": 0.25, "resumed": 1.0}
    spec = json.loads(record.spec_json)
    assert spec["args"] == ["--lr", "0.25"]
    assert record.memo == f"fork of {parent.name}:ep1"
    assert getpass.getuser() == record.user
