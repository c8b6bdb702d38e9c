"""What one Slurm query says about one job, independent of how it was asked."""

from __future__ import annotations

from dataclasses import dataclass

from nsml_hpc.slurm.states import SessionState


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    state: SessionState
    slurm_state: str
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    submitted_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    elapsed_s: float | None = None
    gpus: int | None = None
    node_list: str | None = None
    # What Slurm gave the job (read back, never what was asked): None when not reported.
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_limit: str | None = None  # as Slurm prints it: "01:00:00", "UNLIMITED"
    nodes: int | None = None
    # False while accounting has the job without its partition (slurmdbd can report a job's
    # end before its start record with the partition and time limit): asked again later.
    allocation_complete: bool = True


def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """``"3:0"`` -> ``(3, 0)``; ``"0:15"`` -> ``(0, 15)``; empty -> ``(None, None)``."""
    text = text.strip()
    if not text:
        return None, None
    code, _, signal = text.partition(":")
    return int(code), int(signal) if signal else None


def clean_reason(text: str) -> str | None:
    text = text.strip()
    return None if text in ("", "None", "(null)") else text
