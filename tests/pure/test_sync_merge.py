"""How sync merges slurmctld's view (squeue) into accounting's (sacct) when accounting lags."""

from __future__ import annotations

from nsml_hpc.slurm.records import JobRecord
from nsml_hpc.slurm.states import SessionState
from nsml_hpc.sync.run import _merge_queue_record


def _record(
    state: SessionState, reason: str | None = None, exit_code: int | None = None
) -> JobRecord:
    return JobRecord(
        job_id="7", state=state, slurm_state=str(state), reason=reason, exit_code=exit_code
    )


def test_a_pending_reason_comes_from_slurmctld() -> None:
    merged = _merge_queue_record(
        _record(SessionState.PENDING, exit_code=0), _record(SessionState.PENDING, "Resources")
    )
    assert (merged.state, merged.reason) == (SessionState.PENDING, "Resources")


def test_an_ended_job_waits_for_accountings_exit_code() -> None:
    # A job that failed within a second: slurmctld says FAILED, accounting still PENDING 0:0.
    accounting = _record(SessionState.PENDING, exit_code=0)
    merged = _merge_queue_record(accounting, _record(SessionState.FAILED))
    assert merged == accounting
