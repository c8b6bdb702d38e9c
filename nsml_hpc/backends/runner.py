"""Run Slurm commands as local subprocesses, mapping OS errors to :class:`BackendError`."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import time

from nsml_hpc.backends.base import CommandResult
from nsml_hpc.backends.remote_shell import EnvChanges
from nsml_hpc.errors import BackendError

log = logging.getLogger(__name__)


class LocalRunner:
    """Runs commands on this machine (the login node)."""

    def run(
        self, argv: list[str], *, timeout: float, env: EnvChanges | None = None
    ) -> CommandResult:
        start = time.monotonic()
        try:
            completed = subprocess.run(
                argv,
                env=changed_environment(env),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            raise BackendError(
                f"{argv[0]} not found on PATH: is this a Slurm login node? ({exc.strerror})"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise BackendError(f"{argv[0]} did not answer within {timeout:.0f} s") from exc
        except OSError as exc:
            raise BackendError(f"cannot run {argv[0]}: {exc}") from exc
        log.debug(
            "ran %s: exit %d in %.2f s",
            shlex.join(argv)[:300],
            completed.returncode,
            time.monotonic() - start,
        )
        return CommandResult(argv, completed.returncode, completed.stdout, completed.stderr)


def changed_environment(env: EnvChanges | None) -> dict[str, str] | None:
    """This process's environment with ``env`` applied (None: inherit it unchanged)."""
    if not env:
        return None
    result = dict(os.environ)
    for name, value in env.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result
