"""One paramiko connection to a cluster's login node, shared by everything a command does.

Opened on first use (through any jump hosts), reused for every command and SFTP request
after it, and closed by :meth:`SshConnection.close` (the workspace does that when the command
ends). A connection that broke off is opened again by the next use, so a long ``logs -f`` or
a TUI survives a dropped link.

Host keys are verified strictly: a server missing from the known_hosts files is refused (with
its fingerprint and the ``nsml-hpc cluster trust`` command to run), and a CHANGED key is
refused with a warning. Keys come from the profile or ``~/.ssh/config``, the SSH agent, and
``~/.ssh/id_*``. An encrypted key is unlocked by the agent, or by a passphrase asked for
interactively; the passphrase lives in memory only and is never written anywhere.

Every paramiko and socket error becomes :class:`~nsml_hpc.errors.ConnectionFailed` naming
the cluster, the server and the cause.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import socket
import threading
from pathlib import Path

import paramiko

from nsml_hpc.backends.base import PassphrasePrompt
from nsml_hpc.backends.ssh_target import SshEndpoint, SshTarget
from nsml_hpc.errors import BackendError, ConfigError, ConnectionFailed, NsmlError

# SFTP answers that are about a file, not about the connection.
FILE_ERRNOS = {
    errno.ENOENT,
    errno.EACCES,
    errno.EPERM,
    errno.EEXIST,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.ENOTEMPTY,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
}


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's form: ``SHA256:`` and the unpadded base64 of the key blob's SHA-256."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


class UnknownHostKey(paramiko.SSHException):  # type: ignore[misc]
    """The server is in no known_hosts file (raised by :class:`RefuseUnknownHosts`)."""

    def __init__(self, hostname: str, key: paramiko.PKey) -> None:
        super().__init__(f"{hostname} is not a known host")
        self.hostname = hostname
        self.key = key


class RefuseUnknownHosts(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    """paramiko's RejectPolicy, keeping the key so that the error can show its fingerprint."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise UnknownHostKey(hostname, key)


def host_key_client(known_hosts: tuple[str, ...]) -> paramiko.SSHClient:
    """A client that knows the keys of ``known_hosts`` and refuses every other server."""
    client = paramiko.SSHClient()
    keys = client.get_host_keys()
    for path in known_hosts:
        if Path(path).is_file():
            try:
                keys.load(path)
            except (OSError, paramiko.SSHException, ValueError) as exc:
                raise ConfigError(f"cannot read known_hosts file {path}: {exc}") from exc
    client.set_missing_host_key_policy(RefuseUnknownHosts())
    return client


def changed_key_message(
    target: SshTarget, hostname: str, got: paramiko.PKey, expected: paramiko.PKey
) -> str:
    return (
        f"cluster {target.cluster}: WARNING: the host key of {hostname} has CHANGED "
        f"(known_hosts has {expected.get_name()} {fingerprint(expected)}, the server sent "
        f"{got.get_name()} {fingerprint(got)}). Someone may be intercepting the connection, "
        "or the server was reinstalled. Refusing to connect. If the change is expected, remove "
        f"the old key (ssh-keygen -R '{hostname}' -f {target.known_hosts[0]}) and run "
        f"nsml-hpc cluster trust {target.cluster}"
    )


def unknown_key_message(target: SshTarget, hostname: str, key: paramiko.PKey) -> str:
    return (
        f"cluster {target.cluster}: the host key of {hostname} ({key.get_name()} "
        f"{fingerprint(key)}) is not in {', '.join(target.known_hosts[:1])}; check it and "
        f"run: nsml-hpc cluster trust {target.cluster}"
    )


def _agent_has_keys() -> bool:
    try:
        agent = paramiko.Agent()
        try:
            return bool(agent.get_keys())
        finally:
            agent.close()
    except (OSError, paramiko.SSHException):
        return False


class SshConnection:
    """The lazily opened, reused connection of one cluster."""

    def __init__(
        self,
        target: SshTarget,
        *,
        passphrase_prompt: PassphrasePrompt | None = None,
    ) -> None:
        self.target = target
        self._prompt = passphrase_prompt
        self._passphrase: str | None = None  # memory only
        self._clients: list[paramiko.SSHClient] = []  # jump hosts first, the login node last
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.RLock()
        self.opened = 0  # connections opened so far (tests check that a command opens one)

    @property
    def cluster(self) -> str:
        return self.target.cluster

    # --- opening -------------------------------------------------------------------------

    def client(self) -> paramiko.SSHClient:
        """The connected client, opening the connection on first use.

        A connection found dead is reported once (ConnectionFailed: whatever was under way
        fails cleanly and moves no cursor) and opened again by the use after that, so the next
        sync, or the next round of ``logs -f``, goes on over a new connection.
        """
        with self._lock:
            if self._clients:
                transport = self._clients[-1].get_transport()
                if transport is not None and transport.is_active():
                    return self._clients[-1]
                raise self.lost("in use", EOFError("the connection had dropped"))
            self._clients = self._open()
            self.opened += 1
            return self._clients[-1]

    def transport(self) -> paramiko.Transport:
        transport = self.client().get_transport()
        if transport is None:
            raise self.lost("opening the connection", EOFError())
        return transport

    def is_active(self) -> bool:
        if not self._clients:
            return False
        transport = self._clients[-1].get_transport()
        return transport is not None and transport.is_active()

    def _identity_files(self, endpoint: SshEndpoint) -> list[str]:
        files = list(endpoint.identity_files) or list(self.target.endpoint.identity_files)
        for path in files:
            if not Path(path).is_file():
                raise ConfigError(f"cluster {self.cluster}: identity file {path} does not exist")
        return files

    def _passphrase_for(self, files: list[str]) -> str | None:
        """Ask for a passphrase only when a key is encrypted and the agent cannot help."""
        if self._passphrase is not None or self._prompt is None:
            return self._passphrase
        for path in files:
            try:
                paramiko.PKey.from_path(path)
            except (paramiko.PasswordRequiredException, TypeError):
                # TypeError: cryptography's "Key is password-protected" for OpenSSH-format keys
                if _agent_has_keys():
                    return None
                self._passphrase = self._prompt(f"passphrase for {path}: ")
                return self._passphrase
            except (OSError, paramiko.SSHException, ValueError):
                continue
        return None

    def _open(self) -> list[paramiko.SSHClient]:
        hops = [*self.target.jumps, self.target.endpoint]
        clients: list[paramiko.SSHClient] = []
        sock: socket.socket | paramiko.Channel | paramiko.ProxyCommand | None = None
        try:
            for index, hop in enumerate(hops):
                if sock is None and hop.proxy_command:
                    sock = paramiko.ProxyCommand(hop.proxy_command)
                clients.append(self._connect_one(hop, sock))
                if index + 1 < len(hops):
                    sock = self._tunnel(clients[-1], hop, hops[index + 1])
        except BaseException:
            for client in reversed(clients):
                client.close()
            raise
        return clients

    def _tunnel(
        self, client: paramiko.SSHClient, hop: SshEndpoint, to: SshEndpoint
    ) -> paramiko.Channel:
        transport = client.get_transport()
        assert transport is not None
        try:
            return transport.open_channel(
                "direct-tcpip",
                (to.hostname, to.port),
                ("127.0.0.1", 0),
                timeout=self.target.connect_timeout,
            )
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectionFailed(
                f"cluster {self.cluster}: jump host {hop.text()} cannot reach "
                f"{to.hostname}:{to.port} ({_cause(exc)})"
            ) from exc

    def _socket(self, hop: SshEndpoint) -> socket.socket:
        """A TCP connection with Nagle's algorithm off: SSH requests are small and each waits
        for its answer, so delayed ACKs would add ~40 ms to every command and file request."""
        connection = socket.create_connection(
            (hop.hostname, hop.port), timeout=self.target.connect_timeout
        )
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def _connect_one(
        self,
        hop: SshEndpoint,
        sock: socket.socket | paramiko.Channel | paramiko.ProxyCommand | None,
    ) -> paramiko.SSHClient:
        client = host_key_client(self.target.known_hosts)
        files = self._identity_files(hop)
        timeout = self.target.connect_timeout
        try:
            if sock is None:
                sock = self._socket(hop)
            client.connect(
                hop.hostname,
                port=hop.port,
                username=hop.user,
                key_filename=files or None,
                passphrase=self._passphrase_for(files),
                allow_agent=True,
                look_for_keys=not files,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
                sock=sock,
            )
        except BaseException as exc:
            client.close()
            if isinstance(exc, Exception) and not isinstance(exc, NsmlError):
                raise self._connect_error(hop, files, exc) from exc
            raise
        return client

    def _connect_error(self, hop: SshEndpoint, files: list[str], exc: Exception) -> NsmlError:
        where = f"cluster {self.cluster} ({hop.text()})"
        if isinstance(exc, paramiko.BadHostKeyException):
            return ConnectionFailed(
                changed_key_message(self.target, hop.known_hosts_name, exc.key, exc.expected_key)
            )
        if isinstance(exc, UnknownHostKey):
            return ConnectionFailed(unknown_key_message(self.target, exc.hostname, exc.key))
        if isinstance(exc, paramiko.PasswordRequiredException):
            return ConnectionFailed(
                f"{where}: identity file {', '.join(files) or '~/.ssh/id_*'} is encrypted; "
                "add it to the SSH agent (ssh-add FILE) or run the command in a terminal"
            )
        if isinstance(exc, paramiko.AuthenticationException):
            tried = ", ".join([*files, "agent keys"] if files else ["agent keys", "~/.ssh/id_*"])
            return ConnectionFailed(
                f"{where}: the server refused the login of user {hop.user} (tried {tried}); "
                f"check the user name and that your public key is in ~{hop.user}/.ssh/"
                "authorized_keys on the cluster"
            )
        if isinstance(exc, socket.gaierror):
            return ConnectionFailed(f"{where}: cannot resolve host {hop.hostname} ({exc.strerror})")
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
            return ConnectionFailed(f"{where}: cannot connect: connection refused")
        if isinstance(exc, TimeoutError | socket.timeout):
            return ConnectionFailed(
                f"{where}: no answer within {self.target.connect_timeout:.0f} s"
            )
        if isinstance(exc, ConnectionRefusedError):
            return ConnectionFailed(f"{where}: cannot connect: connection refused")
        if isinstance(exc, OSError):
            return ConnectionFailed(f"{where}: cannot connect: {exc.strerror or exc}")
        if isinstance(exc, EOFError):
            return ConnectionFailed(f"{where}: the server closed the connection during login")
        if isinstance(exc, paramiko.SSHException):
            return ConnectionFailed(f"{where}: SSH login failed: {exc}")
        return ConnectionFailed(f"{where}: cannot connect: {_cause(exc)}")

    # --- using ---------------------------------------------------------------------------

    def lost(self, doing: str, exc: BaseException) -> ConnectionFailed:
        """The error for a connection that broke off while ``doing`` something."""
        self.close()
        return ConnectionFailed(
            f"cluster {self.cluster}: connection to {self.target.endpoint.text()} lost while "
            f"{doing} ({_cause(exc)})"
        )

    def failure(self, doing: str, path: str, exc: BaseException) -> NsmlError:
        """A file error (permission, missing folder) or, if the link is gone, a lost one."""
        if isinstance(exc, OSError) and exc.errno in FILE_ERRNOS and self.is_active():
            return BackendError(
                f"cluster {self.cluster}: cannot {doing} {path}: {exc.strerror or exc}"
            )
        if self.is_active() and isinstance(exc, OSError):
            return BackendError(f"cluster {self.cluster}: cannot {doing} {path}: {_cause(exc)}")
        return self.lost(f"trying to {doing} {path}", exc)

    def sftp(self) -> paramiko.SFTPClient:
        """The connection's SFTP session (opened once, on the same connection)."""
        with self._lock:
            client = self.client()
            if self._sftp is not None and self._sftp.get_channel() is not None:
                channel = self._sftp.get_channel()
                if channel is not None and not channel.closed:
                    return self._sftp
            try:
                self._sftp = client.open_sftp()
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise self.lost("opening SFTP", exc) from exc
            channel = self._sftp.get_channel()
            if channel is not None:
                channel.settimeout(max(60.0, self.target.connect_timeout))
            return self._sftp

    def exec(
        self, command: str, *, timeout: float, stdin: bytes | None = None
    ) -> tuple[int, bytes, bytes]:
        """Run one command line on the login node: (exit status, stdout, stderr)."""
        transport = self.transport()
        err_parts: list[bytes] = []
        try:
            channel = transport.open_session(timeout=timeout)
            channel.settimeout(timeout)
            channel.exec_command(command)
            reader = threading.Thread(
                target=lambda: err_parts.append(channel.makefile_stderr("rb").read()),
                daemon=True,
            )
            reader.start()
            if stdin:
                channel.sendall(stdin)
            channel.shutdown_write()
            out = channel.makefile("rb").read()
            reader.join(timeout)
            if not channel.status_event.wait(timeout):
                raise TimeoutError(f"no exit status within {timeout:.0f} s")
            status = channel.exit_status
            channel.close()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise self.lost(f"running {command.split(' ', 1)[0]}", exc) from exc
        if status < 0 or not transport.is_active():
            raise self.lost(f"running {command.split(' ', 1)[0]}", EOFError("no exit status"))
        return status, out, b"".join(err_parts)

    def server_key(self) -> paramiko.PKey | None:
        transport = self._clients[-1].get_transport() if self._clients else None
        return transport.get_remote_server_key() if transport is not None else None

    def close(self) -> None:
        with self._lock:
            if self._sftp is not None:
                with contextlib.suppress(Exception):  # closing a dead link may fail
                    self._sftp.close()
                self._sftp = None
            for client in reversed(self._clients):
                client.close()
            self._clients = []


def _cause(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
