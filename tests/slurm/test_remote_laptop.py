"""A "laptop" (its own catalog and config) using the sandbox as a remote cluster over SSH:
submit as alice, follow, ps across clusters, one connection per command, uploads that send
only what changed, and rm --purge on the cluster."""

from __future__ import annotations

import json
import os
import pwd
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsml_hpc.backends.runner import LocalRunner
from nsml_hpc.backends.ssh import ParamikoRunner
from nsml_hpc.backends.ssh_connect import SshConnection
from nsml_hpc.catalog.metrics import metric_lines
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import list_sessions
from nsml_hpc.cli import main
from nsml_hpc.config.settings import load_settings
from nsml_hpc.sessions.actions import remove_session
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

TRAIN = """
    import os, time, nsml_hpc
    gpus = len([d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d])
    lr = nsml_hpc.session.hyperparameters["lr"]
    for epoch in range(5):
        nsml_hpc.report(step=epoch, loss=lr / (epoch + 1), visible_gpus=gpus)
        print(f"epoch {epoch} on {gpus} gpus", flush=True)
        time.sleep(0.3)
"""


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_laptop_submits_as_alice_with_two_gpus_follows_to_completed_and_holds_the_remote_metrics(
    ssh_cluster: str, remote_root: str, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_script(project_dir, "train.py", TRAIN)
    code, out, err = _run(
        ["submit", "--cluster", ssh_cluster, "--gpus", "2", "--follow", "train.py", "--lr", "0.1"],
        capsys,
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("submitted proj/1 (job ") and " on sandbox -> " in lines[0]
    assert [f"epoch {i} on 2 gpus" for i in range(5)] == lines[1:-1]
    assert lines[-1] == "proj/1: COMPLETED"

    catalog = open_catalog(load_settings().catalog_url)  # the laptop's own catalog
    try:
        (record,) = list_sessions(catalog)
        assert (record.cluster, record.user, record.gpus) == ("sandbox", "alice", 2)
        assert record.run_dir == f"{remote_root}/alice/proj/1"
        # The cluster's own file, as the job (running as alice) wrote it.
        remote_file = Path(record.run_dir) / "metrics.jsonl"
        assert remote_file.stat().st_uid == pwd.getpwnam("alice").pw_uid
        in_file = [json.loads(line) for line in remote_file.read_text().splitlines()]
        assert record.id is not None
        assert metric_lines(catalog, record.id) == in_file
        assert [line["visible_gpus"] for line in in_file] == [2] * 5
        assert [line["step"] for line in in_file] == list(range(5))
    finally:
        catalog.close()


def _counting(calls: Counter[str], kind: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def run(self: Any, argv: list[str], *, timeout: float, env: Any = None) -> Any:
        calls[f"{kind}:{argv[0]}"] += 1
        return original(self, argv, timeout=timeout, env=env)

    return run


def test_ps_shows_both_clusters_with_exactly_one_sacct_call_each(
    ssh_cluster: str,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_script(project_dir, "wait.py", "import time\ntime.sleep(6)\n")
    ws = Workspace.open(load_settings())
    try:
        here = submit_script(ws, project_dir, "wait.py", cluster="local")
        there = submit_script(ws, project_dir, "wait.py", cluster=ssh_cluster)
    finally:
        ws.close()

    calls: Counter[str] = Counter()
    monkeypatch.setattr(LocalRunner, "run", _counting(calls, "local", LocalRunner.run))
    monkeypatch.setattr(ParamikoRunner, "run", _counting(calls, "ssh", ParamikoRunner.run))
    opened: list[str] = []
    original_open = SshConnection._open

    def counting_open(self: SshConnection) -> Any:
        opened.append(self.cluster)
        return original_open(self)

    monkeypatch.setattr(SshConnection, "_open", counting_open)
    code, out, err = _run(["ps"], capsys)
    assert code == 0, err
    assert calls["local:sacct"] == 1
    assert calls["ssh:sacct"] == 1
    assert calls["local:squeue"] <= 1 and calls["ssh:squeue"] <= 1
    assert {call.split(":", 1)[1] for call in calls} <= {"sacct", "squeue"}
    assert opened == ["sandbox"]  # one SSH connection for the whole command
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["NAME", "CLUSTER", "STATE"]
    listed = {row.split()[0]: row.split()[1] for row in rows}
    assert listed == {here.name: "local", there.name: "sandbox"}

    ws = Workspace.open(load_settings())
    try:
        for name in (here.name, there.name):
            wait_for_state(ws, name, {"COMPLETED"}, timeout=180)
    finally:
        ws.close()


def test_every_command_opens_one_connection(
    ssh_cluster: str,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_script(project_dir, "hello.py", "print('hello from the cluster')\n")
    opened: list[str] = []
    original_open = SshConnection._open

    def counting_open(self: SshConnection) -> Any:
        opened.append(self.cluster)
        return original_open(self)

    monkeypatch.setattr(SshConnection, "_open", counting_open)
    for argv in (
        ["submit", "--cluster", ssh_cluster, "--follow", "hello.py"],
        ["sync", "--cluster", ssh_cluster],
        ["show", "proj/1"],
        ["logs", "proj/1"],
        ["cluster", "test", ssh_cluster],
        ["rm", "--purge", "proj/1"],
    ):
        opened.clear()
        code, out, err = _run(argv, capsys)
        assert code == 0, (argv, err)
        assert len(opened) <= 1, argv
        if argv[0] in ("submit", "logs", "rm"):
            assert opened == ["sandbox"], argv
        if argv[0] == "logs":
            assert out == "hello from the cluster\n"


def test_rm_purge_deletes_the_run_directory_on_the_cluster(
    remote_workspace: Workspace, ssh_cluster: str, project_dir: Path
) -> None:
    write_script(project_dir, "quick.py", "print('done')\n")
    done = submit_script(remote_workspace, project_dir, "quick.py", cluster=ssh_cluster)
    wait_for_state(remote_workspace, done.name, {"COMPLETED"})
    assert done.run_dir.is_dir()  # on the cluster, which this machine also is
    removed = remove_session(remote_workspace, done.name, purge=True)
    assert removed.purged
    assert not done.run_dir.exists()
    assert list_sessions(remote_workspace.catalog) == []


@pytest.mark.parametrize("transport", ["paramiko", "openssh"])
def test_a_resubmit_uploads_only_what_changed(
    transport: str,
    request: pytest.FixtureRequest,
    project_dir: Path,
) -> None:
    cluster = request.getfixturevalue(
        "ssh_cluster" if transport == "paramiko" else "openssh_cluster"
    )
    for i in range(20):
        (project_dir / "pkg").mkdir(exist_ok=True)
        (project_dir / "pkg" / f"mod{i}.py").write_text(f"VALUE = {i}\n" * 200)
    (project_dir / "old.txt").write_text("gone next time\n")
    write_script(
        project_dir,
        "train.py",
        """
        import pathlib, sys, pkg.mod3
        print(pkg.mod3.VALUE)
        if "--save" in sys.argv:  # an output the job writes into its own folder
            pathlib.Path("checkpoint.bin").write_bytes(bytes(1 << 20))
        """,
    )
    progress: list[tuple[int, int]] = []
    ws = Workspace.open(load_settings())
    try:
        first = submit_script(ws, project_dir, "train.py", ["--save"], cluster=cluster)
        assert first.upload is not None
        assert (first.upload.sent, first.upload.kept) == (22, 0)
        assert wait_for_state(ws, first.name, {"COMPLETED", "FAILED"}).state == "COMPLETED"
        assert (first.run_dir / "code" / "checkpoint.bin").is_file()

        (project_dir / "pkg" / "mod3.py").write_text("VALUE = 'changed'\n")
        (project_dir / "old.txt").unlink()
        tool = project_dir / "tool.sh"
        tool.write_text("#!/bin/sh\necho tool\n")
        tool.chmod(0o755)
        from nsml_hpc.job.spec import SessionSpec
        from nsml_hpc.submit.create import prepare, submit

        prepared = prepare(
            SessionSpec(project="itest", script="train.py", cluster=cluster),
            ws.settings,
            project_dir,
        )
        second = submit(
            prepared,
            ws.catalog,
            ws.settings,
            ws.backend_for(cluster),
            progress=lambda sent, total: progress.append((sent, total)),
        )
        assert second.upload is not None
        assert (second.upload.sent, second.upload.kept, second.upload.removed) == (2, 20, 0)
        total = len(b"VALUE = 'changed'\n") + len(b"#!/bin/sh\necho tool\n")
        assert progress and progress[-1] == (total, total)
        record = wait_for_state(ws, second.name, {"COMPLETED", "FAILED"})
        assert record.state == "COMPLETED"
    finally:
        ws.close()
    # The new snapshot on the cluster is exactly the local tree (plus what the job's own
    # imports wrote there).
    code = second.run_dir / "code"
    remote = sorted(
        p.relative_to(code).as_posix()
        for p in code.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    local = sorted(
        p.relative_to(project_dir).as_posix() for p in project_dir.rglob("*") if p.is_file()
    )
    assert remote == local
    for name in local:
        assert (code / name).read_bytes() == (project_dir / name).read_bytes()
    assert os.access(code / "tool.sh", os.X_OK)
    assert (second.run_dir / f"slurm-{second.job_id}.out").read_text() == "changed\n"
    assert "checkpoint.bin" not in remote  # the first job's output was not copied over


PHASES = """
    import time, nsml_hpc
    for step in range(30):
        nsml_hpc.report(step=step, loss=1.0 / (step + 1), acc=step / 30)
        time.sleep(0.1)
"""


@pytest.mark.parametrize("transport", ["paramiko", "openssh"])
def test_syncs_read_each_byte_of_the_metric_files_once(
    transport: str, request: pytest.FixtureRequest, project_dir: Path
) -> None:
    cluster = request.getfixturevalue(
        "ssh_cluster" if transport == "paramiko" else "openssh_cluster"
    )
    write_script(project_dir, "phases.py", PHASES)
    ws = Workspace.open(load_settings())
    try:
        done = submit_script(ws, project_dir, "phases.py", cluster=cluster)
        files: Any = ws.backend_for(cluster).files
        before = files.bytes_read
        syncs = 0
        record = wait_for_state(ws, done.name, {"RUNNING"}, timeout=120)
        while record.state == "RUNNING":
            record = wait_for_state(ws, done.name, {"RUNNING", "COMPLETED"})
            syncs += 1
        record = wait_for_state(ws, done.name, {"COMPLETED"})
        for _ in range(2):
            wait_for_state(ws, done.name, {"COMPLETED"})  # later syncs find nothing new
        read = files.bytes_read - before
    finally:
        ws.close()
    sizes = sum((done.run_dir / name).stat().st_size for name in ("metrics.jsonl", "events.jsonl"))
    assert syncs >= 2
    assert record.metric_count == 60
    assert read == sizes  # every byte fetched exactly once over all those syncs
