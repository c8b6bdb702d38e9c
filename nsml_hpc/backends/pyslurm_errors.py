"""pyslurm's failures as nsml-hpc errors: one line that names the cause and the fix.

libslurm reports some failures only on the process's standard error (a slurmdbd that refuses
the connection prints ``python: error: slurm_persist_conn_open_without_init: failed to open
persistent connection to host:localhost:6819: Connection refused`` and then pyslurm raises a
bare ``Failed to get Jobs from slurmdbd``). :func:`libslurm_stderr` catches what libslurm
writes to file descriptor 2 during one call, so the error can say it in its single line and
the terminal (or the TUI's screen) does not get libslurm's lines on top.

Measured on the sandbox (Slurm 22.05, pyslurm 22.5.3), with a private slurm.conf pointing at a
closed port: slurmctld unreachable -> ``RPCError`` errno 1800, ``Unable to contact slurm
controller (connect failure)``, after about 9 s of libslurm's own retries; slurmdbd unreachable
-> at once, the message above.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from nsml_hpc.errors import BackendError, ConnectionFailed, SubmitRefused

# Slurm's errno for "cannot talk to slurmctld" (slurm_errno.h, the same in 22.05 and 25.11):
# SLURM_COMMUNICATIONS_{CONNECTION,SEND,RECEIVE,SHUTDOWN}_ERROR and the SLURMCTLD_ ones.
CONTROLLER_ERRNOS = frozenset({1001, 1002, 1003, 1004, 1800, 1801, 1802, 1803})
_CONTROLLER_WORDS = ("unable to contact slurm controller", "slurm controller")
_DBD_WORDS = ("slurmdbd", "persist", "dbd_", "database")

# libslurm is not thread-safe everywhere, and fd 2 is process-wide: one pyslurm call at a time.
PYSLURM_LOCK = threading.Lock()


@dataclass
class Captured:
    text: str = ""


@contextmanager
def libslurm_stderr() -> Iterator[Captured]:
    """What is written to file descriptor 2 inside the block (libslurm's log lines)."""
    captured = Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield captured
            finally:
                os.dup2(saved, 2)
                sink.seek(0)
                captured.text = sink.read().decode("utf-8", "replace")
    finally:
        os.close(saved)


def error_parts(exc: BaseException) -> tuple[int | None, str]:
    """(errno, message) of a pyslurm ``RPCError`` or of the old API's ``ValueError(msg, n)``."""
    errno = getattr(exc, "errno", None)
    message = getattr(exc, "msg", None)
    if message is None and len(exc.args) == 2 and isinstance(exc.args[1], int):
        message, errno = exc.args
    return (errno if isinstance(errno, int) else None), str(message or exc).strip()


def log_cause(logged: str) -> str | None:
    """The most telling line libslurm printed: the first one naming a connection."""
    lines = [line.strip() for line in logged.splitlines() if line.strip()]
    for line in lines:
        if "connection" in line.lower() or "refused" in line.lower():
            return line.split(": error: ", 1)[-1]
    return lines[0].split(": error: ", 1)[-1] if lines else None


def slurm_conf() -> str:
    return os.environ.get("SLURM_CONF") or "/etc/slurm/slurm.conf"


def pyslurm_error(
    cluster: str, action: str, exc: BaseException, logged: str = "", *, submitting: bool = False
) -> BackendError:
    """The one nsml-hpc error for a failed pyslurm call (pure)."""
    errno, message = error_parts(exc)
    cause = log_cause(logged)
    detail = f"{message}: {cause}" if cause and cause not in message else message
    lowered = f"{message} {cause or ''}".lower()
    if errno in CONTROLLER_ERRNOS or any(word in lowered for word in _CONTROLLER_WORDS):
        return ConnectionFailed(
            f"cluster {cluster}: slurmctld does not answer ({detail}); start slurmctld, or "
            f"correct SlurmctldHost/SlurmctldPort in {slurm_conf()}"
        )
    if any(word in lowered for word in _DBD_WORDS):
        # A BackendError, not ConnectionFailed: slurmctld still answers, so sync goes on
        # degraded (states from the queue, as when sacct fails), it does not skip the cluster.
        return BackendError(
            f"cluster {cluster}: slurmdbd refused the connection ({detail}); start slurmdbd, "
            f"or correct AccountingStorageHost/AccountingStoragePort in {slurm_conf()}"
        )
    if submitting:
        return SubmitRefused(f"Slurm refused the job on cluster {cluster}: {detail}")
    return BackendError(f"pyslurm {action} failed on cluster {cluster}: {detail}")
