"""Run Slurm commands as local subprocesses, mapping OS errors to :class:`BackendError`."""

from __future__ import annotations

import os
import subprocess

from nsml_hpc.backends.base import CommandResult
from nsml_hpc.errors import BackendError


class LocalRunner:
    """Runs commands on this machine (the login node); ``env`` (such as a cluster's
    ``SLURM_CONF``) is set on top of this process's environment for every command."""

    env: dict[str, str] | None = None  # (subclasses that skip __init__ get none)

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = dict(env) if env else None

    def run(self, argv: list[str], *, timeout: float) -> CommandResult:
        try:
            completed = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env} if self.env else None,
            )
        except FileNotFoundError as exc:
            raise BackendError(
                f"{argv[0]} not found on PATH: is this a Slurm login node? ({exc.strerror})"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise BackendError(f"{argv[0]} did not answer within {timeout:.0f} s") from exc
        except OSError as exc:
            raise BackendError(f"cannot run {argv[0]}: {exc}") from exc
        return CommandResult(argv, completed.returncode, completed.stdout, completed.stderr)
