"""The ``ssh`` backend: Slurm's commands on a login node reached over SSH.

It is the ``local`` backend's parsing (:class:`~nsml_hpc.backends.cli.CliBackend`) with two
remote parts: a runner that executes each Slurm command on the login node, and file access to
the cluster's file system. Two transports provide them:

- ``paramiko`` (default): one paramiko connection per command or sync; commands over exec
  channels, files over SFTP (:mod:`nsml_hpc.backends.sftp_files`);
- ``openssh``: the system ``ssh`` binary through an OpenSSH ControlMaster socket, so a
  connection the user already opened (and its 2FA) is reused
  (:mod:`nsml_hpc.backends.openssh`).
"""

from __future__ import annotations

from nsml_hpc.backends.base import CommandResult, PassphrasePrompt
from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.backends.remote_shell import EnvChanges, remote_command
from nsml_hpc.backends.sftp_files import SftpFiles
from nsml_hpc.backends.ssh_connect import SshConnection
from nsml_hpc.backends.ssh_target import resolve_target
from nsml_hpc.config.cluster_profiles import ClusterProfile


class ParamikoRunner:
    """Runs a command on the login node over the cluster's one paramiko connection."""

    def __init__(self, connection: SshConnection, remote_path: str | None = None) -> None:
        self.connection = connection
        self.remote_path = remote_path

    def run(
        self, argv: list[str], *, timeout: float, env: EnvChanges | None = None
    ) -> CommandResult:
        status, out, err = self.connection.exec(
            remote_command(argv, self.remote_path, env), timeout=timeout
        )
        return CommandResult(
            argv, status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        )


class SshBackend(CliBackend):
    """A cluster behind SSH, over one paramiko connection (opened on first use)."""

    def __init__(self, profile: ClusterProfile, connection: SshConnection) -> None:
        super().__init__(
            profile.name,
            ParamikoRunner(connection, profile.remote_path),
            SftpFiles(connection),
            slurm_conf=profile.slurm_conf,
        )
        self.profile = profile
        self.connection = connection

    @property
    def user(self) -> str:
        return self.connection.target.endpoint.user

    def close(self) -> None:
        self.connection.close()


def make_ssh_backend(
    profile: ClusterProfile, *, passphrase_prompt: PassphrasePrompt | None = None
) -> CliBackend:
    """The backend of an ``ssh`` profile, over its configured transport (nothing connects yet)."""
    if profile.transport == "openssh":
        from nsml_hpc.backends.openssh import OpenSshBackend

        return OpenSshBackend(profile, interactive=passphrase_prompt is not None)
    connection = SshConnection(resolve_target(profile), passphrase_prompt=passphrase_prompt)
    return SshBackend(profile, connection)
