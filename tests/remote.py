"""Helpers for the tests that reach the sandbox's real sshd (127.0.0.1:2222, users alice/bob).

The sandbox script (sandbox/slurm-sandbox.sh) writes the users' keys and a known_hosts line
for the server into /var/lib/nsml-sandbox/ssh/. Tests run as root on the same machine, so
they can also look at "the cluster's" files directly (to compare with what came over SSH) and
find the sshd process serving a connection (to cut it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from nsml_hpc.config.cluster_profiles import ClusterProfile, ProfileDefaults
from nsml_hpc.config.clusters_file import add_profile

SSH_DIR = Path("/var/lib/nsml-sandbox/ssh")
HOST = "127.0.0.1"
PORT = 2222
HOST_PUBLIC_KEY = Path("/etc/ssh/ssh_host_ed25519_key.pub")


@dataclass(frozen=True)
class Sandbox:
    alice_key: Path
    bob_key: Path
    known_hosts: Path

    def profile(self, name: str, run_root: str, /, **overrides: object) -> ClusterProfile:
        values: dict[str, object] = {
            "backend": "ssh",
            "host": HOST,
            "port": PORT,
            "user": "alice",
            "identity_file": str(self.alice_key),
            "known_hosts": str(self.known_hosts),
            "run_root": run_root,
            "connect_timeout": 10.0,
            "defaults": ProfileDefaults(partition="debug"),
        }
        values.update(overrides)
        return ClusterProfile(name=name, **values)  # type: ignore[arg-type]

    def add(self, name: str, run_root: str, /, **overrides: object) -> ClusterProfile:
        run_root = str(overrides.pop("run_root", run_root))
        profile = self.profile(name, run_root, **overrides)
        add_profile(profile, replace=True)
        return profile


def sandbox_ssh() -> Sandbox:
    sandbox = Sandbox(
        alice_key=SSH_DIR / "alice_ed25519",
        bob_key=SSH_DIR / "bob_ed25519",
        known_hosts=SSH_DIR / "known_hosts",
    )
    for path in (sandbox.alice_key, sandbox.bob_key, sandbox.known_hosts):
        if not path.is_file():
            raise AssertionError(f"{path} is missing: is the sandbox up (slurm-sandbox.sh up)?")
    return sandbox


def closed_port() -> int:
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _socket_inodes(local_port: int) -> set[str]:
    """Inodes of the sshd side of the TCP connection whose client port is ``local_port``."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (
                int(local.rsplit(":", 1)[1], 16) == PORT
                and int(remote.rsplit(":", 1)[1], 16) == local_port
            ):
                inodes.add(inode)
    return inodes


def sshd_pids_serving(local_port: int) -> list[int]:
    """The sshd processes that hold the server end of our connection (found through /proc)."""
    targets = {f"socket:[{inode}]" for inode in _socket_inodes(local_port)}
    pids: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "sshd":
                continue
            links = {os.readlink(fd) for fd in (proc / "fd").iterdir()}
        except OSError:
            continue
        if links & targets:
            pids.append(int(proc.name))
    return pids


def cut_connection(local_port: int) -> list[int]:
    """Kill the sshd processes serving the connection from ``local_port`` (the test's own)."""
    pids = sshd_pids_serving(local_port)
    assert pids, f"no sshd serves the connection from port {local_port}"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sshd_pids_serving(local_port):
        time.sleep(0.05)
    return pids


def host_fingerprint() -> str:
    """The sandbox sshd's host key fingerprint, as ssh-keygen prints it."""
    done = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(HOST_PUBLIC_KEY)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.split()[1]


def other_host_key_line(tmp: Path) -> str:
    """A known_hosts line for [127.0.0.1]:2222 with a DIFFERENT ed25519 key."""
    key = tmp / "impostor_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30
    )
    kind, blob = key.with_suffix(".pub").read_text().split()[:2]
    return f"[{HOST}]:{PORT} {kind} {blob}\n"
