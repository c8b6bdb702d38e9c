"""What bad input and faults get, against the sandbox's real sshd: one clear error line that
names the cluster and the cause, a non-zero exit, no session recorded for a failed submission,
nothing on the cluster that looks like a run directory, and no metric point lost or doubled
when a sync is cut off and a later one succeeds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from nsml_hpc.backends.ssh import SshBackend
from nsml_hpc.catalog.metrics import metric_lines
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import get_session, list_sessions
from nsml_hpc.cli import main
from nsml_hpc.config.settings import load_settings
from nsml_hpc.errors import ConnectionFailed
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.sessions.actions import sync_now
from nsml_hpc.submit.create import prepare, submit
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script
from tests.remote import (
    HOST,
    PORT,
    Sandbox,
    closed_port,
    cut_connection,
    host_fingerprint,
    other_host_key_line,
)

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_nothing_recorded() -> None:
    catalog = open_catalog(load_settings().catalog_url)
    try:
        with catalog.engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM session")).scalar() == 0
            assert conn.execute(text("SELECT COUNT(*) FROM job")).scalar() == 0
    finally:
        catalog.close()


def _run_dirs(remote_root: str) -> list[str]:
    """Everything under the project folders of the (test's own) run root on the cluster."""
    root = Path(remote_root)
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.glob("*/*/*"))


@pytest.fixture
def impostor_known_hosts(tmp_path: Path) -> Path:
    path = tmp_path / "known_hosts_changed"
    path.write_text(other_host_key_line(tmp_path))
    return path


@pytest.fixture
def empty_known_hosts(tmp_path: Path) -> Path:
    path = tmp_path / "known_hosts_empty"
    path.write_text("")
    return path


def _encrypted_key(tmp_path: Path, sandbox: Sandbox, passphrase: str) -> Path:
    key = tmp_path / "alice_encrypted"
    shutil.copy(sandbox.alice_key, key)
    key.chmod(0o600)
    subprocess.run(
        ["ssh-keygen", "-q", "-p", "-P", "", "-N", passphrase, "-f", str(key)],
        check=True,
        timeout=30,
        capture_output=True,
    )
    return key


# a fault: the profile values that make it (from the test's context), what the error says
Fault = tuple[Callable[[dict[str, Any]], dict[str, Any]], list[str]]
FAULTS: dict[str, Fault] = {
    "unreachable-host": (lambda ctx: {"port": closed_port()}, ["connection refused"]),
    "wrong-user": (lambda ctx: {"user": "mallory"}, ["refused the login of user mallory"]),
    "key-refused": (
        lambda ctx: {"identity_file": str(ctx["sandbox"].bob_key)},
        ["refused the login of user alice", "bob_ed25519"],
    ),
    "unknown-host-key": (
        lambda ctx: {"known_hosts": str(ctx["empty_known_hosts"])},
        ["is not in", "nsml-hpc cluster trust sandbox"],
    ),
    "changed-host-key": (
        lambda ctx: {"known_hosts": str(ctx["impostor_known_hosts"])},
        ["CHANGED", "Refusing to connect", "{fingerprint}"],
    ),
    "remote-sbatch-missing": (
        lambda ctx: {"remote_path": "/nonexistent"},
        ["sbatch not found on the cluster's PATH", "remote_path"],
    ),
    "run-root-not-writable": (
        lambda ctx: {"run_root": "/opt/nsml-not-writable"},
        ["cannot create /opt/nsml-not-writable", "Permission denied"],
    ),
    "encrypted-key-without-agent": (
        lambda ctx: {"identity_file": str(_encrypted_key(ctx["tmp_path"], ctx["sandbox"], "pw"))},
        ["is encrypted", "ssh-add"],
    ),
}


@pytest.mark.parametrize("transport", ["paramiko", "openssh"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_is_one_clear_line_naming_the_cluster_and_nothing_is_recorded(
    fault: str,
    transport: str,
    nsml_env: Path,
    sandbox: Sandbox,
    remote_root: str,
    project_dir: Path,
    tmp_path: Path,
    control_dir: Path,
    empty_known_hosts: Path,
    impostor_known_hosts: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make, expected = FAULTS[fault]
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.ssh/id_* to fall back on
    ctx = {
        "sandbox": sandbox,
        "tmp_path": tmp_path,
        "empty_known_hosts": empty_known_hosts,
        "impostor_known_hosts": impostor_known_hosts,
    }
    overrides: dict[str, Any] = make(ctx)
    if transport == "openssh":
        overrides |= {"transport": "openssh", "control_path": f"{control_dir}/%C"}
    sandbox.add("sandbox", remote_root, **overrides)
    write_script(project_dir, "train.py", "print('never runs')\n")
    code, out, err = _run(["submit", "--cluster", "sandbox", "--gpus", "1", "train.py"], capsys)
    assert code == 4, err
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("nsml-hpc: error: ")
    assert "sandbox" in err
    wanted = OPENSSH_EXPECTED.get(fault, expected) if transport == "openssh" else expected
    for part in wanted:
        part = part.replace("{fingerprint}", host_fingerprint())
        assert part.lower() in err.lower(), err
    _assert_nothing_recorded()
    assert _run_dirs(remote_root) == []


# The system ssh binary says less than paramiko about why a login failed (and, without a
# terminal, cannot ask for a key's passphrase: BatchMode makes that a refused login).
OPENSSH_EXPECTED = {
    "unreachable-host": ["connection refused"],
    "wrong-user": ["permission denied"],
    "key-refused": ["permission denied"],
    "unknown-host-key": ["not trusted yet", "nsml-hpc cluster trust sandbox"],
    "changed-host-key": ["CHANGED"],
    "encrypted-key-without-agent": ["permission denied"],
}


def test_cluster_trust_shows_the_fingerprint_and_adds_the_key_only_when_confirmed(
    nsml_env: Path,
    sandbox: Sandbox,
    remote_root: str,
    empty_known_hosts: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox.add("sandbox", remote_root, known_hosts=str(empty_known_hosts))
    code, out, _ = _run(["cluster", "test", "sandbox"], capsys)
    assert code == 4
    assert "FAIL" in out and "nsml-hpc cluster trust sandbox" in out

    code, out, err = _run(["cluster", "trust", "sandbox"], capsys)  # stdin is no terminal
    assert code == 5
    assert host_fingerprint() in err and "--yes" in err
    assert empty_known_hosts.read_text() == ""

    code, out, err = _run(["cluster", "trust", "sandbox", "--yes"], capsys)
    assert code == 0, err
    assert host_fingerprint() in out
    line = empty_known_hosts.read_text()
    assert line.startswith(f"[{HOST}]:{PORT} ssh-ed25519 ")
    code, out, _ = _run(["cluster", "test", "sandbox"], capsys)
    assert code == 0, out
    code, out, _ = _run(["cluster", "trust", "sandbox", "--yes"], capsys)
    assert code == 0 and "already trusted" in out
    assert empty_known_hosts.read_text() == line  # nothing added twice


def test_cluster_trust_refuses_a_changed_host_key_and_changes_nothing(
    nsml_env: Path,
    sandbox: Sandbox,
    remote_root: str,
    impostor_known_hosts: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox.add("sandbox", remote_root, known_hosts=str(impostor_known_hosts))
    before = impostor_known_hosts.read_text()
    code, _out, err = _run(["cluster", "trust", "sandbox", "--yes"], capsys)
    assert code == 4
    assert "CHANGED" in err and "Refusing to connect" in err and host_fingerprint() in err
    assert len(err.strip().splitlines()) == 1
    assert impostor_known_hosts.read_text() == before


def test_a_connection_cut_during_the_upload_records_nothing_and_leaves_no_snapshot(
    remote_workspace: Workspace,
    ssh_cluster: str,
    remote_root: str,
    project_dir: Path,
) -> None:
    write_script(project_dir, "train.py", "import os\nprint(os.path.getsize('data.bin'))\n")
    (project_dir / "data.bin").write_bytes(os.urandom(4 << 20))
    backend = remote_workspace.backend_for(ssh_cluster)
    assert isinstance(backend, SshBackend)
    prepared = prepare(
        SessionSpec(project="itest", script="train.py", cluster=ssh_cluster),
        remote_workspace.settings,
        project_dir,
    )
    killed: list[int] = []

    def cut_midway(sent: int, total: int) -> None:
        if not killed and sent > total // 4:
            killed.extend(cut_connection(backend.connection.transport().sock.getsockname()[1]))

    with pytest.raises(ConnectionFailed) as failure:
        submit(
            prepared,
            remote_workspace.catalog,
            remote_workspace.settings,
            backend,
            progress=cut_midway,
        )
    assert killed
    message = str(failure.value)
    assert "cluster sandbox" in message and "lost" in message
    assert "\n" not in message
    assert list_sessions(remote_workspace.catalog) == []
    _assert_nothing_recorded()
    # Nothing that looks like a complete run directory (the partial upload was even removed
    # over a new connection).
    assert not any(name.split("/")[-1].isdigit() for name in _run_dirs(remote_root))

    done = submit(prepared, remote_workspace.catalog, remote_workspace.settings, backend)
    assert done.name == "itest/1"
    record = wait_for_state(remote_workspace, done.name, {"COMPLETED", "FAILED"})
    assert record.state == "COMPLETED"
    assert (done.run_dir / f"slurm-{done.job_id}.out").read_text() == f"{4 << 20}\n"


STEPS = """
    import time, nsml_hpc
    for step in range(40):
        nsml_hpc.report(step=step, loss=1.0 / (step + 1))
        time.sleep(0.1)
"""


def test_a_connection_cut_during_a_sync_loses_and_doubles_no_metric_point(
    remote_workspace: Workspace, ssh_cluster: str, project_dir: Path
) -> None:
    ws = remote_workspace
    write_script(project_dir, "steps.py", STEPS)
    done = submit_script(ws, project_dir, "steps.py", cluster=ssh_cluster)
    record = wait_for_state(ws, done.name, {"RUNNING"}, timeout=120)
    while record.metric_count == 0:
        record = wait_for_state(ws, done.name, {"RUNNING", "COMPLETED"})
    backend = ws.backend_for(ssh_cluster)
    assert isinstance(backend, SshBackend)
    files = backend.files
    original = files.read_many
    cuts: list[int] = []

    def cut_then_read(requests: Sequence[tuple[str, int, int]]) -> list[bytes]:
        if any(path.endswith("metrics.jsonl") for path, _, _ in requests) and not cuts:
            cuts.extend(cut_connection(backend.connection.transport().sock.getsockname()[1]))
        return original(requests)

    files.read_many = cut_then_read  # type: ignore[method-assign]
    before = get_session(ws.catalog, done.name).metric_count
    time.sleep(0.5)  # the job reports every 0.1 s: there is something new to read
    report = sync_now(ws)
    assert cuts
    assert "lost" in report.errors["sandbox"] and "cluster sandbox" in report.errors["sandbox"]
    assert get_session(ws.catalog, done.name).metric_count == before  # nothing half-stored

    files.read_many = original  # type: ignore[method-assign]
    record = wait_for_state(ws, done.name, {"COMPLETED"}, timeout=120)
    assert record.id is not None
    in_file = [
        json.loads(line) for line in (done.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    stored = metric_lines(ws.catalog, record.id)
    assert stored == in_file
    assert [line["step"] for line in stored] == list(range(40))
    assert record.metric_count == 40


def test_an_unreachable_cluster_does_not_stop_ps_from_showing_the_others(
    nsml_env: Path,
    sandbox: Sandbox,
    remote_root: str,
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox.add("sandbox", remote_root)
    write_script(project_dir, "wait.py", "import time\ntime.sleep(3)\n")
    ws = Workspace.open(load_settings())
    try:
        there = submit_script(ws, project_dir, "wait.py", cluster="sandbox")
        here = submit_script(ws, project_dir, "wait.py", cluster="local")
    finally:
        ws.close()
    sandbox.add("sandbox", remote_root, port=closed_port())  # the cluster goes away
    ws = Workspace.open(load_settings())
    try:
        record = wait_for_state(ws, here.name, {"COMPLETED"}, timeout=120)
        assert record.state == "COMPLETED"
        assert get_session(ws.catalog, there.name).state == "SUBMITTED"  # cached, unchanged
    finally:
        ws.close()
    code, out, err = _run(["ps"], capsys)
    assert code == 0
    assert "warning: cluster sandbox (alice@127.0.0.1:" in err and "showing cached data" in err
    assert len(err.strip().splitlines()) == 1
    assert {line.split()[0] for line in out.splitlines()[1:]} == {here.name, there.name}
    sandbox.add("sandbox", remote_root)  # back: the session catches up
    ws = Workspace.open(load_settings())
    try:
        assert wait_for_state(ws, there.name, {"COMPLETED"}, timeout=120).state == "COMPLETED"
    finally:
        ws.close()
