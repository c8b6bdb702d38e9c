"""Session states and how Slurm's job states map onto them."""

from __future__ import annotations

from enum import StrEnum


class SessionState(StrEnum):
    PREPARING = "PREPARING"  # number reserved, run directory being written, not yet submitted
    SUBMITTED = "SUBMITTED"  # sbatch returned a job id; Slurm's accounting has not shown it yet
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    REQUEUED = "REQUEUED"
    PREEMPTED = "PREEMPTED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    NODE_FAIL = "NODE_FAIL"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    LOST = "LOST"  # Slurm no longer knows the job (neither sacct nor squeue) after the grace period


TERMINAL_STATES = frozenset(
    {
        SessionState.COMPLETED,
        SessionState.FAILED,
        SessionState.CANCELLED,
        SessionState.TIMEOUT,
        SessionState.OUT_OF_MEMORY,
        SessionState.NODE_FAIL,
        SessionState.BOOT_FAIL,
        SessionState.DEADLINE,
        SessionState.LOST,
    }
)
# States Slurm may still leave (requeue after preemption): followed for a while after the end.
SETTLING_STATES = frozenset({SessionState.PREEMPTED})
SETTLE_SECONDS = 600.0

_SLURM_TO_SESSION = {
    "PENDING": SessionState.PENDING,
    "REQUEUE_HOLD": SessionState.PENDING,
    "REQUEUE_FED": SessionState.PENDING,
    "RESV_DEL_HOLD": SessionState.PENDING,
    "CONFIGURING": SessionState.RUNNING,
    "RUNNING": SessionState.RUNNING,
    "COMPLETING": SessionState.RUNNING,
    "RESIZING": SessionState.RUNNING,
    "SIGNALING": SessionState.RUNNING,
    "STAGE_OUT": SessionState.RUNNING,
    "STOPPED": SessionState.SUSPENDED,
    "SUSPENDED": SessionState.SUSPENDED,
    "REQUEUED": SessionState.REQUEUED,
    "PREEMPTED": SessionState.PREEMPTED,
    "COMPLETED": SessionState.COMPLETED,
    "FAILED": SessionState.FAILED,
    "CANCELLED": SessionState.CANCELLED,
    "REVOKED": SessionState.CANCELLED,
    "TIMEOUT": SessionState.TIMEOUT,
    "OUT_OF_MEMORY": SessionState.OUT_OF_MEMORY,
    "OUT_OF_ME+": SessionState.OUT_OF_MEMORY,
    "NODE_FAIL": SessionState.NODE_FAIL,
    "BOOT_FAIL": SessionState.BOOT_FAIL,
    "DEADLINE": SessionState.DEADLINE,
    "SPECIAL_EXIT": SessionState.FAILED,
}


def session_state(slurm_state: str) -> SessionState:
    """Map a Slurm state as sacct/squeue print it (``CANCELLED by 0``, ``CANCELLED+``) to ours."""
    word = slurm_state.strip().split(" ", 1)[0].rstrip("+").upper()
    if word in _SLURM_TO_SESSION:
        return _SLURM_TO_SESSION[word]
    if slurm_state.strip().upper().startswith("OUT_OF_ME"):
        return SessionState.OUT_OF_MEMORY
    raise ValueError(f"unknown Slurm job state {slurm_state!r}")


def is_live(state: SessionState | str, ended_at: float | None, now: float) -> bool:
    """Whether sync still has to ask Slurm about a session in ``state``."""
    state = SessionState(state)
    if state in TERMINAL_STATES:
        return False
    until = live_until(state, ended_at)
    return until is None or now < until


def live_until(state: SessionState | str, ended_at: float | None) -> float | None:
    """When a session in ``state`` stops being live by the clock alone (None: it does not)."""
    if SessionState(state) in SETTLING_STATES and ended_at is not None:
        return ended_at + SETTLE_SECONDS
    return None
