"""The ``openssh`` transport of the ssh backend: the system ``ssh`` binary, through a
ControlMaster socket.

Clusters that ask for a second factor (Duo and the like) on every login make a paramiko
connection per command unbearable. OpenSSH multiplexes: one authenticated master connection
carries every later ``ssh`` call. This transport runs each Slurm command and each file
operation as ``ssh -o ControlMaster=auto -o ControlPath=... -o ControlPersist=... -- HOST CMD``,
so a master the user opened (``ssh -M``, or their ``~/.ssh/config``'s ControlPath) is reused,
and otherwise the first call becomes the master and keeps it for ``control_persist``.

``~/.ssh/config`` is honoured by ssh itself (``Include`` and ``Match`` too); when it sets a
ControlPath for the host, that one is used untouched. Host keys are always checked strictly
(``StrictHostKeyChecking=yes``).
The ``ssh`` invocations are :mod:`nsml_hpc.backends.openssh_client`; file access is
:mod:`nsml_hpc.backends.openssh_files`.
"""

from __future__ import annotations

from nsml_hpc.backends.base import CommandResult
from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.backends.openssh_client import OpenSsh
from nsml_hpc.backends.openssh_files import OpenSshFiles
from nsml_hpc.backends.remote_shell import EnvChanges, remote_command
from nsml_hpc.config.cluster_profiles import ClusterProfile


class OpenSshRunner:
    def __init__(self, ssh: OpenSsh) -> None:
        self.ssh = ssh

    def run(
        self, argv: list[str], *, timeout: float, env: EnvChanges | None = None
    ) -> CommandResult:
        status, out, err = self.ssh.run(
            remote_command(argv, self.ssh.profile.remote_path, env),
            timeout=timeout,
            doing=argv[0],
        )
        return CommandResult(
            argv, status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        )


class OpenSshBackend(CliBackend):
    """A cluster behind SSH, reached with the system ssh binary (ControlMaster reuse)."""

    def __init__(self, profile: ClusterProfile, *, interactive: bool = False) -> None:
        """``interactive``: ssh may prompt on the terminal (a CLI command on one); otherwise
        (the TUI, cron, tests) BatchMode makes a needed prompt an error instead."""
        self.ssh = OpenSsh(profile, interactive=interactive)
        super().__init__(
            profile.name,
            OpenSshRunner(self.ssh),
            OpenSshFiles(self.ssh),
            slurm_conf=profile.slurm_conf,
        )
        self.profile = profile

    @property
    def user(self) -> str:
        return self.profile.user or self.ssh.config().get("user") or ""

    def close(self) -> None:
        """The master connection stays up for ``control_persist`` (that is its point);
        ``ssh -O exit HOST`` ends it sooner."""
