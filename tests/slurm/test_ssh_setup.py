"""How a user's SSH setup is honoured, against the sandbox's real sshd: ~/.ssh/config
(HostName, User, Port, IdentityFile, UserKnownHostsFile, ProxyJump, ProxyCommand), jump
hosts from the profile, the SSH agent, a ControlMaster the user opened (openssh transport),
and key passphrases that are never written anywhere."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsml_hpc.backends.ssh import SshBackend
from nsml_hpc.clusters.check import check_cluster
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.config.clusters_file import add_profile
from nsml_hpc.config.locations import clusters_file
from nsml_hpc.config.settings import load_settings
from nsml_hpc.workspace import Workspace
from tests.helpers import submit_script, wait_for_state, write_script
from tests.remote import HOST, PORT, Sandbox

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home directory (no keys, no ssh config) and no SSH agent."""
    folder = tmp_path / "home"
    (folder / ".ssh").mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return folder


def _check(name: str) -> tuple[bool, str, Workspace]:
    workspace = Workspace.open(load_settings())
    report = check_cluster(workspace, name)
    return report.ok, str(report.to_json()), workspace


def test_ssh_config_supplies_hostname_user_port_key_and_known_hosts(
    nsml_env: Path, home: Path, sandbox: Sandbox, remote_root: str
) -> None:
    (home / ".ssh" / "config").write_text(
        "Host hpc-login\n"
        f"    HostName {HOST}\n"
        f"    Port {PORT}\n"
        "    User alice\n"
        f"    IdentityFile {sandbox.alice_key}\n"
        f"    UserKnownHostsFile {sandbox.known_hosts}\n"
    )
    add_profile(ClusterProfile(name="hpc", backend="ssh", host="hpc-login", run_root=remote_root))
    ok, detail, workspace = _check("hpc")
    try:
        assert ok, detail
        backend = workspace.backend_for("hpc")
        assert isinstance(backend, SshBackend)
        assert backend.user == "alice"
        assert backend.connection.target.endpoint.text() == f"alice@{HOST}:{PORT}"
    finally:
        workspace.close()


def test_proxyjump_from_ssh_config_is_followed(
    nsml_env: Path, home: Path, sandbox: Sandbox, remote_root: str
) -> None:
    (home / ".ssh" / "config").write_text(
        "Host gateway\n"
        f"    HostName {HOST}\n"
        f"    Port {PORT}\n"
        "    User alice\n"
        f"    IdentityFile {sandbox.alice_key}\n"
        "Host inner\n"
        f"    HostName {HOST}\n"
        f"    Port {PORT}\n"
        "    User alice\n"
        f"    IdentityFile {sandbox.alice_key}\n"
        "    ProxyJump gateway\n"
    )
    add_profile(
        ClusterProfile(
            name="inner",
            backend="ssh",
            host="inner",
            known_hosts=str(sandbox.known_hosts),
            run_root=remote_root,
        )
    )
    ok, detail, workspace = _check("inner")
    try:
        assert ok, detail
        backend = workspace.backend_for("inner")
        assert isinstance(backend, SshBackend)
        assert [hop.alias for hop in backend.connection.target.jumps] == ["gateway"]
        assert len(backend.connection._clients) == 2  # the gateway's, and the one through it
    finally:
        workspace.close()


def test_a_jump_host_in_the_profile_carries_a_whole_session(
    nsml_env: Path, sandbox: Sandbox, remote_root: str, project_dir: Path
) -> None:
    sandbox.add("via-gw", remote_root, jump_host=f"alice@{HOST}:{PORT}")
    write_script(project_dir, "hop.py", "import nsml_hpc\nnsml_hpc.report(step=0, hops=1)\n")
    workspace = Workspace.open(load_settings())
    try:
        done = submit_script(workspace, project_dir, "hop.py", cluster="via-gw")
        record = wait_for_state(workspace, done.name, {"COMPLETED", "FAILED"})
        assert record.state == "COMPLETED"
        assert record.metric_count == 1
        backend = workspace.backend_for("via-gw")
        assert isinstance(backend, SshBackend)
        assert len(backend.connection._clients) == 2
    finally:
        workspace.close()


def test_proxycommand_from_ssh_config_is_used(
    nsml_env: Path, home: Path, sandbox: Sandbox, remote_root: str
) -> None:
    (home / ".ssh" / "config").write_text(
        "Host behind-proxy\n"
        f"    HostName {HOST}\n"
        f"    Port {PORT}\n"
        "    User alice\n"
        f"    IdentityFile {sandbox.alice_key}\n"
        f"    ProxyCommand ssh -i {sandbox.alice_key} -o UserKnownHostsFile={sandbox.known_hosts}"
        f" -o StrictHostKeyChecking=yes -o BatchMode=yes -p {PORT} -W %h:%p alice@{HOST}\n"
    )
    add_profile(
        ClusterProfile(
            name="proxied",
            backend="ssh",
            host="behind-proxy",
            known_hosts=str(sandbox.known_hosts),
            run_root=remote_root,
        )
    )
    ok, detail, workspace = _check("proxied")
    try:
        assert ok, detail
        backend = workspace.backend_for("proxied")
        assert isinstance(backend, SshBackend)
        assert backend.connection.target.endpoint.proxy_command is not None
    finally:
        workspace.close()


@pytest.fixture
def agent(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A real ssh-agent of this test (stopped by its pid at the end)."""
    started = subprocess.run(
        ["ssh-agent", "-s"], capture_output=True, text=True, check=True, timeout=30
    )
    env = dict(re.findall(r"(SSH_AUTH_SOCK|SSH_AGENT_PID)=([^;]+);", started.stdout))
    monkeypatch.setenv("SSH_AUTH_SOCK", env["SSH_AUTH_SOCK"])
    yield env
    subprocess.run(
        ["ssh-agent", "-k"],
        env={**os.environ, **env},
        capture_output=True,
        timeout=30,
        check=False,
    )


def test_the_ssh_agent_unlocks_the_login(
    nsml_env: Path, agent: dict[str, str], sandbox: Sandbox, remote_root: str, tmp_path: Path
) -> None:
    # An encrypted copy of the key on disk; only the agent holds it unlocked.
    key = tmp_path / "alice_locked"
    shutil.copy(sandbox.alice_key, key)
    key.chmod(0o600)
    subprocess.run(
        ["ssh-keygen", "-q", "-p", "-P", "", "-N", "agent-only", "-f", str(key)],
        check=True,
        timeout=30,
        capture_output=True,
    )
    subprocess.run(
        ["ssh-add", str(sandbox.alice_key)],
        env={**os.environ, **agent},
        check=True,
        timeout=30,
        capture_output=True,
    )
    sandbox.add("agent", remote_root, identity_file=str(key))
    ok, detail, workspace = _check("agent")
    workspace.close()
    assert ok, detail
    sandbox.add("agent-only", remote_root, identity_file=None)  # no key file at all
    ok, detail, workspace = _check("agent-only")
    workspace.close()
    assert ok, detail


def _master(control: Path, sandbox: Sandbox) -> str:
    """Open an OpenSSH master connection the way a user would (ssh -M, backgrounded)."""
    subprocess.run(
        [
            "ssh",
            "-M",
            "-N",
            "-f",
            "-o",
            f"ControlPath={control}",
            "-o",
            "ControlPersist=120",
            "-o",
            f"UserKnownHostsFile={sandbox.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-i",
            str(sandbox.alice_key),
            "-p",
            str(PORT),
            f"alice@{HOST}",
        ],
        check=True,
        timeout=30,
        capture_output=True,
    )
    done = subprocess.run(
        ["ssh", "-o", f"ControlPath={control}", "-O", "check", "-p", str(PORT), f"alice@{HOST}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stderr.strip()  # "Master running (pid=N)"


def test_openssh_transport_reuses_the_control_master_the_user_opened(
    nsml_env: Path,
    home: Path,
    sandbox: Sandbox,
    remote_root: str,
    control_dir: Path,
    project_dir: Path,
) -> None:
    control = control_dir / "user-master"
    before = _master(control, sandbox)
    # No key file, no agent, no ~/.ssh/id_*: a NEW connection could not log in at all, so
    # everything below can only work through the user's master connection (as with 2FA).
    sandbox.add(
        "twofa",
        remote_root,
        transport="openssh",
        identity_file=None,
        control_path=str(control),
    )
    write_script(project_dir, "mfa.py", "import nsml_hpc\nnsml_hpc.report(step=0, ok=1)\n")
    workspace = Workspace.open(load_settings())
    try:
        done = submit_script(workspace, project_dir, "mfa.py", cluster="twofa")
        record = wait_for_state(workspace, done.name, {"COMPLETED", "FAILED"})
        assert record.state == "COMPLETED"
        assert record.metric_count == 1
    finally:
        workspace.close()
    after = subprocess.run(
        ["ssh", "-o", f"ControlPath={control}", "-O", "check", "-p", str(PORT), f"alice@{HOST}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stderr.strip()
    assert after == before  # the same master process carried it all


def test_a_key_passphrase_is_asked_once_and_never_written_anywhere(
    nsml_env: Path,
    home: Path,
    sandbox: Sandbox,
    remote_root: str,
    project_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "correct horse battery staple 9f3a"
    key = tmp_path / "alice_passphrase"
    shutil.copy(sandbox.alice_key, key)
    key.chmod(0o600)
    subprocess.run(
        ["ssh-keygen", "-q", "-p", "-P", "", "-N", secret, "-f", str(key)],
        check=True,
        timeout=30,
        capture_output=True,
    )
    sandbox.add("locked", remote_root, identity_file=str(key))
    asked: list[str] = []

    def prompt(question: str) -> str:
        asked.append(question)
        return secret

    write_script(
        project_dir, "train.py", "import sys, nsml_hpc\nnsml_hpc.report(step=0, loss=1.0)\n"
    )
    workspace = Workspace.open(load_settings(), passphrase_prompt=prompt)
    try:
        done = submit_script(workspace, project_dir, "train.py", cluster="locked", gpus=1)
        record = wait_for_state(workspace, done.name, {"COMPLETED", "FAILED"})
        assert record.state == "COMPLETED"
    finally:
        workspace.close()
    assert asked == [f"passphrase for {key}: "]  # once, for the one connection

    needle = secret.encode()
    places = [nsml_env, clusters_file().parent, Path(remote_root)]
    for place in places:
        for path in place.rglob("*"):
            if path.is_file():
                assert needle not in path.read_bytes(), path
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err
