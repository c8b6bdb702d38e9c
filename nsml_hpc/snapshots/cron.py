"""The crontab line that runs ``nsml-hpc gc --cron``, and installing it (idempotently: a
previous nsml-hpc gc line is replaced, every other line is kept as it was); and the same
command as a Slurm ``scrontab`` entry, printed for ``scrontab -e``.

Both carry one shell command (:func:`gc_command`): the variables that locate the config,
catalog, run root and data folder, then this Python's ``-m nsml_hpc gc --cron``. cron hands
its command to ``/bin/sh`` after turning a bare ``%`` into a newline, so the crontab line
escapes ``%`` as ``\\%``; scrontab writes its command into a ``#!/bin/sh`` batch script as it
stands (Slurm's src/scrontab/scrontab.c), so its entry carries the command unescaped: both
shells run the same words.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

from nsml_hpc.errors import NsmlError, SpecError
from nsml_hpc.job.layout import RUN_ROOT_ENV

MARKER = "# nsml-hpc gc"
NICKNAMES = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")
_FIELD = re.compile(r"^[0-9A-Za-z*/,-]{1,64}$")
# Carried into the cron line when set: cron starts jobs with an almost empty environment.
ENV_VARS = (
    "NSML_HPC_CONFIG",
    "NSML_HPC_CATALOG",
    RUN_ROOT_ENV,
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "PATH",
)
CRONTAB_TIMEOUT = 30.0
SCRON_TIME = "00:30:00"  # the Slurm time limit of one gc run
SCRON_JOB_NAME = "nsml-hpc-gc"


def validate_schedule(schedule: str) -> str:
    """Five cron fields (``0 3 * * *``) or a nickname such as ``@daily``."""
    text = " ".join(schedule.split())
    if text in NICKNAMES:
        return text
    fields = text.split(" ")
    if len(fields) != 5 or not all(_FIELD.fullmatch(item) for item in fields):
        raise SpecError(
            f"invalid cron schedule {schedule!r}: give five fields such as '0 3 * * *' "
            f"or one of {', '.join(NICKNAMES)}"
        )
    return text


def gc_command(environ: dict[str, str] | None = None) -> str:
    """The shell command cron or scrontab runs: ``VAR=value ... python -m nsml_hpc gc --cron``
    (cron starts jobs with an almost empty environment; scrontab with the login one)."""
    env = os.environ if environ is None else environ
    words = [f"{name}={shlex.quote(env[name])}" for name in ENV_VARS if env.get(name)]
    words += [shlex.quote(sys.executable), "-m", "nsml_hpc", "gc", "--cron"]
    command = " ".join(words)
    if "\n" in command or "\r" in command:
        raise SpecError("an environment value holds a newline; cannot write a cron line")
    return command


def cron_line(schedule: str, environ: dict[str, str] | None = None) -> str:
    command = gc_command(environ).replace("%", "\\%")  # cron turns a bare % into a newline
    return f"{validate_schedule(schedule)} {command} {MARKER}"


def scrontab_entry(
    schedule: str, environ: dict[str, str] | None = None, *, time_limit: str = SCRON_TIME
) -> str:
    """The lines to add with ``scrontab -e``: a marker comment, ``#SCRON`` options (a time
    limit, a job name to find it by), then the schedule and :func:`gc_command` unchanged."""
    return (
        f"{MARKER} (nsml-hpc gc --install-cron ... --print --scrontab)\n"
        f"#SCRON --time={time_limit}\n"
        f"#SCRON --job-name={SCRON_JOB_NAME}\n"
        f"{validate_schedule(schedule)} {gc_command(environ)}\n"
    )


def _run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=CRONTAB_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        raise NsmlError(
            "crontab is not installed here; add the line yourself (--print), or where Slurm "
            "has scrontab, with scrontab -e (see docs/snapshots.md)"
        ) from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NsmlError(f"crontab failed: {exc}") from exc


def install_cron(line: str) -> bool:
    """Put ``line`` into the user's crontab; True if it replaced an earlier nsml-hpc line."""
    current = _run(["crontab", "-l"])
    if current.returncode != 0 and "no crontab" not in current.stderr.lower():
        raise NsmlError(f"crontab -l failed: {current.stderr.strip() or current.returncode}")
    existing = current.stdout.splitlines() if current.returncode == 0 else []
    kept = [entry for entry in existing if not entry.rstrip().endswith(MARKER)]
    replaced = len(kept) != len(existing)
    written = _run(["crontab", "-"], stdin="\n".join([*kept, line]) + "\n")
    if written.returncode != 0:
        raise NsmlError(f"crontab refused the new table: {written.stderr.strip()}")
    return replaced
