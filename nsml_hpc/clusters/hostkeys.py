"""Trusting a cluster's SSH host key: an explicit step that shows the fingerprint.

``nsml-hpc cluster trust NAME`` asks each server on the way (jump hosts first, then the login
node) for its host key, compares it with the known_hosts files, and for a server that is not
there yet shows the key's SHA256 fingerprint and adds it only once confirmed. A key that
differs from the recorded one is never replaced here: that is the CHANGED-key warning, and
the old line has to be removed by hand after checking why it changed.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko

from nsml_hpc.backends.ssh_connect import (
    SshConnection,
    changed_key_message,
    fingerprint,
    host_key_client,
)
from nsml_hpc.backends.ssh_target import SshEndpoint, SshTarget, resolve_target
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.errors import ConfigError, ConnectionFailed, HostKeyNotTrusted


@dataclass(frozen=True)
class HostKeyCheck:
    """One server's host key and what the known_hosts files say about it."""

    name: str  # as known_hosts names it: host or [host]:port
    key_type: str
    fingerprint: str
    status: str  # "trusted" (already known), "unknown", "added"
    known_hosts: str  # the file a new key goes to


Confirm = Callable[[HostKeyCheck], bool]


def _known_entries(target: SshTarget, name: str) -> dict[str, paramiko.PKey] | None:
    client = host_key_client(target.known_hosts)
    entries = client.get_host_keys().lookup(name)
    return dict(entries) if entries is not None else None


def _open_socket(hop: SshEndpoint, timeout: float) -> socket.socket | paramiko.ProxyCommand:
    if hop.proxy_command:
        return paramiko.ProxyCommand(hop.proxy_command)
    try:
        return socket.create_connection((hop.hostname, hop.port), timeout=timeout)
    except OSError as exc:
        raise ConnectionFailed(
            f"cannot connect to {hop.hostname}:{hop.port}: {exc.strerror or exc}"
        ) from exc


def server_key(
    sock: socket.socket | paramiko.Channel | paramiko.ProxyCommand,
    known: dict[str, paramiko.PKey] | None,
    timeout: float,
    where: str,
) -> paramiko.PKey:
    """The host key a server presents (key exchange only, no login), asking for the key type
    already on record first, as a real connection does."""
    transport = paramiko.Transport(sock)
    try:
        if known:
            options = transport.get_security_options()
            first = next(iter(known))
            options.key_types = [first, *(kind for kind in options.key_types if kind != first)]
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise ConnectionFailed(f"SSH key exchange with {where} failed: {exc}") from exc
    finally:
        transport.close()


def add_known_host(path: str, name: str, key: paramiko.PKey) -> None:
    """Append ``name keytype base64`` to a known_hosts file, atomically (temp + rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    old = target.read_bytes() if target.is_file() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    line = f"{name} {key.get_name()} {key.get_base64()}\n".encode()
    mode = target.stat().st_mode & 0o777 if target.is_file() else 0o644
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as out:
            out.write(old + line)
            out.flush()
            os.fsync(out.fileno())
        Path(temp).replace(target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def trust_cluster(profile: ClusterProfile, confirm: Confirm) -> list[HostKeyCheck]:
    """Check every server on the way to the cluster; add unknown keys that ``confirm`` accepts.

    Raises ConnectionFailed for a CHANGED key (never replaced here) and HostKeyNotTrusted when
    a new key is not confirmed.
    """
    if not profile.remote:
        raise ConfigError(f"cluster {profile.name} is not reached over SSH: nothing to trust")
    target = resolve_target(profile)
    hops = [*target.jumps, target.endpoint]
    checks: list[HostKeyCheck] = []
    timeout = target.connect_timeout
    for index, hop in enumerate(hops):
        name = hop.known_hosts_name
        known = _known_entries(target, name)
        if index == 0:
            sock: socket.socket | paramiko.Channel | paramiko.ProxyCommand = _open_socket(
                hop, timeout
            )
            through: SshConnection | None = None
        else:
            # Log in to the previous hop (its key is trusted by now) and tunnel to this one.
            previous = SshTarget(
                target.cluster,
                hops[index - 1],
                tuple(hops[: index - 1]),
                target.known_hosts,
                timeout,
            )
            through = SshConnection(previous)
            try:
                sock = through.transport().open_channel(
                    "direct-tcpip", (hop.hostname, hop.port), ("127.0.0.1", 0), timeout=timeout
                )
            except (paramiko.SSHException, OSError, EOFError) as exc:
                through.close()
                raise ConnectionFailed(
                    f"cluster {target.cluster}: {hops[index - 1].text()} cannot reach "
                    f"{hop.hostname}:{hop.port} ({exc})"
                ) from exc
        try:
            key = server_key(sock, known, timeout, f"{hop.hostname}:{hop.port}")
        finally:
            if through is not None:
                through.close()
        check = HostKeyCheck(
            name, key.get_name(), fingerprint(key), "unknown", target.known_hosts[0]
        )
        if known is not None:
            recorded = known.get(key.get_name())
            if recorded is None or recorded != key:
                expected = recorded or next(iter(known.values()))
                raise ConnectionFailed(changed_key_message(target, name, key, expected))
            checks.append(
                HostKeyCheck(name, check.key_type, check.fingerprint, "trusted", check.known_hosts)
            )
            continue
        if not confirm(check):
            raise HostKeyNotTrusted(
                f"host key of {name} ({check.key_type} {check.fingerprint}) not trusted; "
                "nothing was changed"
            )
        add_known_host(target.known_hosts[0], name, key)
        checks.append(
            HostKeyCheck(name, check.key_type, check.fingerprint, "added", check.known_hosts)
        )
    return checks
