"""The system ``ssh`` binary for one cluster profile, through a ControlMaster socket: the
connection that the ``openssh`` transport's runner (:mod:`nsml_hpc.backends.openssh`) and its
files (:mod:`nsml_hpc.backends.openssh_files`) both use.

Each Slurm command and each file operation is one
``ssh -o ControlMaster=auto -o ControlPath=... -o ControlPersist=... -- HOST CMD``, so a master
the user opened (``ssh -M``, or their ``~/.ssh/config``'s ControlPath) is reused, and otherwise
the first call becomes the master and keeps it for ``control_persist``. ``~/.ssh/config`` is
honoured by ssh itself (``Include`` and ``Match`` too); the file nsml-hpc means is passed as
``ssh -F`` where ssh would read another one (``NSML_HPC_SSH_CONFIG``, or ``$HOME`` not the
passwd home: :func:`~nsml_hpc.backends.sshconfig.configured_file`). When the config sets a
ControlPath for the host, that one is used untouched. Host keys are always checked strictly
(``StrictHostKeyChecking=yes``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import platformdirs

from nsml_hpc.backends.sshconfig import configured_file
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.errors import ConfigError, ConnectionFailed

SSH_FAILED = 255  # ssh's own exit status for connection, login and host-key failures


def default_control_path() -> str:
    """Where the transport's own master socket lives (user-only folder; %C: a hash of
    user, host and port, so every cluster gets its own socket)."""
    folder = Path(platformdirs.user_runtime_dir("nsml-hpc"))
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        folder = Path.home() / ".ssh"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return str(folder / "cm-%C")


def _expand(path: str) -> str:
    return str(Path(path).expanduser())


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class OpenSsh:
    """``ssh`` invocations for one cluster profile."""

    def __init__(self, profile: ClusterProfile, *, interactive: bool = False) -> None:
        self.profile = profile
        self.interactive = interactive
        self._config: dict[str, str] | None = None
        self.calls = 0  # ssh processes run (tests count them)

    def options(self) -> list[str]:
        profile = self.profile
        config_file = configured_file()
        argv = ["-F", str(config_file)] if config_file is not None else []
        argv += [
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"ConnectTimeout={max(1, int(profile.connect_timeout))}",
        ]
        if not (self.interactive and sys.stdin.isatty()):
            argv += ["-o", "BatchMode=yes"]  # nobody could answer a prompt: fail instead
        if profile.port:
            argv += ["-p", str(profile.port)]
        if profile.user:
            argv += ["-l", profile.user]
        if profile.identity_file:
            argv += ["-i", _expand(profile.identity_file)]
        if profile.known_hosts:
            argv += ["-o", f"UserKnownHostsFile={_expand(profile.known_hosts)}"]
        if profile.jump_host:
            argv += ["-J", profile.jump_host]
        return argv

    def _control_options(self) -> list[str]:
        if self.profile.control_path:
            path = _expand(self.profile.control_path)
        elif "controlpath" in self.config():
            return []  # ~/.ssh/config decides (its ControlMaster/ControlPersist too)
        else:
            path = default_control_path()
        return [
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={path}",
            "-o",
            f"ControlPersist={self.profile.control_persist}",
        ]

    def config(self) -> dict[str, str]:
        """ssh's own view of the host (``ssh -G``): user, and whether a ControlPath is set."""
        if self._config is None:
            argv = ["ssh", "-G", *self.options(), "--", self.host]
            try:
                done = subprocess.run(
                    argv,
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                    stdin=subprocess.DEVNULL,
                )
            except FileNotFoundError as exc:
                raise ConfigError(
                    f"cluster {self.profile.name}: the openssh transport needs the ssh program "
                    "on PATH"
                ) from exc
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ConfigError(f"cluster {self.profile.name}: ssh -G failed: {exc}") from exc
            if done.returncode != 0:
                raise ConfigError(
                    f"cluster {self.profile.name}: ssh -G failed: {last_line(done.stderr)}"
                )
            config: dict[str, str] = {}
            for line in done.stdout.splitlines():
                key, _, value = line.partition(" ")
                if value and value.lower() != "none":
                    config.setdefault(key.lower(), value)
            self._config = config
        return self._config

    @property
    def host(self) -> str:
        assert self.profile.host is not None
        return self.profile.host

    def argv(self, command: str) -> list[str]:
        return ["ssh", *self.options(), *self._control_options(), "--", self.host, command]

    def check(self, returncode: int, stderr: str, doing: str) -> None:
        if returncode != SSH_FAILED:
            return
        name = self.profile.name
        text = stderr.lower()
        if "remote host identification has changed" in text:
            raise ConnectionFailed(
                f"cluster {name}: WARNING: the host key of {self.host} has CHANGED; ssh refused "
                "to connect. If the change is expected, remove the old key (ssh-keygen -R) and "
                f"trust the new one (nsml-hpc cluster trust {name})"
            )
        if "host key verification failed" in text or "no matching host key" in text:
            raise ConnectionFailed(
                f"cluster {name}: the host key of {self.host} is not trusted yet; run: "
                f"nsml-hpc cluster trust {name}"
            )
        raise ConnectionFailed(
            f"cluster {name}: ssh to {self.host} failed while {doing}: "
            f"{last_line(stderr) or 'exit status 255'}"
        )

    def run(
        self, command: str, *, timeout: float, stdin: bytes | None = None, doing: str = ""
    ) -> tuple[int, bytes, bytes]:
        self.calls += 1
        try:
            done = subprocess.run(
                self.argv(command),
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise ConfigError(
                f"cluster {self.profile.name}: the openssh transport needs the ssh program on PATH"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise ConnectionFailed(
                f"cluster {self.profile.name}: no answer from {self.host} within {timeout:.0f} s"
            ) from exc
        self.check(done.returncode, done.stderr.decode("utf-8", "replace"), doing or command)
        return done.returncode, done.stdout, done.stderr

    def popen(self, command: str) -> subprocess.Popen[bytes]:
        self.calls += 1
        return subprocess.Popen(
            self.argv(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
