"""~/.ssh/config as ssh reads it, against the sandbox's real sshd, on both transports: a host
defined in an ``Include``d file (paramiko ignores Include by itself: paramiko#1044), and
``Match`` blocks that pick the key by user.

Every test has a private HOME (and, for the Match case, a config named by
NSML_HPC_SSH_CONFIG); ssh is told that file with ``-F``, so root's own ~/.ssh is never read
or written."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nsml_hpc.backends import sshconfig
from nsml_hpc.backends.openssh import OpenSshBackend
from nsml_hpc.backends.ssh import SshBackend
from nsml_hpc.clusters.check import check_cluster
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.config.clusters_file import add_profile
from nsml_hpc.config.settings import load_settings
from nsml_hpc.workspace import Workspace
from tests.remote import HOST, PORT, Sandbox

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home directory (no keys, no ssh config) and no SSH agent."""
    folder = tmp_path / "home"
    (folder / ".ssh").mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("NSML_HPC_SSH_CONFIG", raising=False)
    return folder


@contextmanager
def _workspace() -> Iterator[Workspace]:
    """A workspace opened after the test added its profiles."""
    ws = Workspace.open(load_settings())
    try:
        yield ws
    finally:
        ws.close()


def _include_setup(home: Path, sandbox: Sandbox) -> None:
    included = home / "ssh-includes" / "sandbox.conf"
    included.parent.mkdir()
    included.write_text(
        "Host nsml-included\n"
        f"    HostName {HOST}\n"
        f"    Port {PORT}\n"
        "    User alice\n"
        f"    IdentityFile {sandbox.alice_key}\n"
        f"    UserKnownHostsFile {sandbox.known_hosts}\n"
    )
    # Absolute: ssh resolves a relative Include of a -F file under the passwd home's ~/.ssh.
    (home / ".ssh" / "config").write_text(
        f"Include {home}/ssh-includes/*.conf\n\nHost *\n    User nobody-here\n    Port 22\n"
    )


def _profile(name: str, remote_root: str, **values: object) -> ClusterProfile:
    profile = ClusterProfile(name=name, backend="ssh", run_root=remote_root, **values)  # type: ignore[arg-type]
    add_profile(profile)
    return profile


@pytest.mark.parametrize("source", ["ssh -G", "fallback parser"])
def test_an_included_host_over_paramiko(
    home: Path,
    sandbox: Sandbox,
    remote_root: str,
    nsml_env: Path,
    source: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _include_setup(home, sandbox)
    if source == "fallback parser":  # a machine without an ssh client
        monkeypatch.setattr(sshconfig, "ssh_program", lambda: None)
        assert isinstance(sshconfig.ssh_config_source(), sshconfig.ParsedSshConfig)
    _profile("included", remote_root, host="nsml-included")
    with _workspace() as workspace:
        report = check_cluster(workspace, "included")
        assert report.ok, report.to_json()
        backend = workspace.backend_for("included")
        assert isinstance(backend, SshBackend)
        target = backend.connection.target
    assert target.endpoint.text() == f"alice@{HOST}:{PORT}"
    assert target.endpoint.identity_files == (str(sandbox.alice_key),)
    assert target.known_hosts[0] == str(sandbox.known_hosts)


def test_an_included_host_over_openssh(
    home: Path, sandbox: Sandbox, remote_root: str, nsml_env: Path, control_dir: Path
) -> None:
    _include_setup(home, sandbox)
    _profile(
        "included-openssh",
        remote_root,
        host="nsml-included",
        transport="openssh",
        control_path=str(control_dir / "%C"),
    )
    with _workspace() as workspace:
        report = check_cluster(workspace, "included-openssh")
        assert report.ok, report.to_json()
        backend = workspace.backend_for("included-openssh")
        assert isinstance(backend, OpenSshBackend)
        assert backend.user == "alice"
    assert backend.ssh.options()[:2] == ["-F", str(home / ".ssh" / "config")]


@pytest.mark.parametrize("transport", ["paramiko", "openssh"])
def test_match_blocks_pick_the_key_of_the_profile_user(
    home: Path,
    tmp_path: Path,
    sandbox: Sandbox,
    remote_root: str,
    nsml_env: Path,
    control_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
) -> None:
    config = tmp_path / "elsewhere" / "ssh_config"
    config.parent.mkdir()
    config.write_text(
        "Host nsml-match\n"
        f"    HostName {HOST}\n"
        f"    Port {PORT}\n"
        f"    UserKnownHostsFile {sandbox.known_hosts}\n"
        "Match originalhost nsml-match user alice\n"
        f"    IdentityFile {sandbox.alice_key}\n"
        f"Match host {HOST} user bob\n"
        f"    IdentityFile {sandbox.bob_key}\n"
    )
    monkeypatch.setenv("NSML_HPC_SSH_CONFIG", str(config))
    extra: dict[str, object] = (
        {"transport": "openssh", "control_path": str(control_dir / "%C")}
        if transport == "openssh"
        else {}
    )
    for user in ("alice", "bob"):
        _profile(f"match-{user}", remote_root, host="nsml-match", user=user, **extra)
    with _workspace() as workspace:
        for user in ("alice", "bob"):
            backend = workspace.backend_for(f"match-{user}")
            if isinstance(backend, SshBackend):
                key = sandbox.alice_key if user == "alice" else sandbox.bob_key
                assert backend.connection.target.endpoint.identity_files == (str(key),)
            result = backend.runner.run(["id", "-un"], timeout=60)  # type: ignore[attr-defined]
            assert (result.returncode, result.stdout.strip()) == (0, user), result.stderr
