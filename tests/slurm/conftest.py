"""Fixtures of the integration tests that reach clusters over SSH: the sandbox's sshd, a
private run root in alice's home per test, and cluster profiles in the test's own config."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsml_hpc.config.settings import load_settings
from nsml_hpc.workspace import Workspace
from tests.remote import HOST, PORT, Sandbox, sandbox_ssh

REMOTE_TEST_ROOT = Path("/home/alice/nsml-test")


@pytest.fixture(scope="session")
def sandbox(slurm_sandbox: str) -> Sandbox:
    """The sandbox's keys and known_hosts (the sshd comes up with the Slurm sandbox)."""
    return sandbox_ssh()


@pytest.fixture
def remote_root() -> Iterator[str]:
    """A run root of its own in alice's home on "the cluster" (removed afterwards)."""
    root = REMOTE_TEST_ROOT / uuid.uuid4().hex[:12]
    yield str(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def control_dir() -> Iterator[Path]:
    """A short folder for OpenSSH ControlMaster sockets (their paths are length-limited);
    every master started in it is asked to exit at the end."""
    folder = Path(tempfile.mkdtemp(prefix="nsml-cm-", dir="/tmp"))
    yield folder
    for socket_path in folder.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "-p", str(PORT), HOST],
            capture_output=True,
            timeout=30,
            check=False,
        )
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def ssh_cluster(nsml_env: Path, sandbox: Sandbox, remote_root: str) -> str:
    """Cluster ``sandbox``: alice@127.0.0.1:2222 over paramiko."""
    sandbox.add("sandbox", remote_root)
    return "sandbox"


@pytest.fixture
def openssh_cluster(nsml_env: Path, sandbox: Sandbox, remote_root: str, control_dir: Path) -> str:
    """Cluster ``sandbox-openssh``: the same account through the system ssh binary."""
    sandbox.add(
        "sandbox-openssh",
        remote_root,
        transport="openssh",
        control_path=str(control_dir / "%C"),
    )
    return "sandbox-openssh"


@pytest.fixture
def remote_workspace(ssh_cluster: str) -> Iterator[Workspace]:
    """A workspace (a "laptop" catalog) that knows the ssh cluster."""
    ws = Workspace.open(load_settings())
    yield ws
    ws.close()
