"""The sacct command nsml-hpc runs, and its parser on output captured from a real Slurm."""

from __future__ import annotations

from datetime import datetime

import pytest

from nsml_hpc.slurm.sacct import SACCT_FIELDS, parse_sacct, sacct_command
from nsml_hpc.slurm.states import SessionState


@pytest.fixture
def mixed(data_text):
    """Jobs 14-22 of tests/data/sacct_mixed.txt, by job id."""
    return {record.job_id: record for record in parse_sacct(data_text("sacct_mixed.txt"))}


@pytest.fixture
def live(data_text):
    return {record.job_id: record for record in parse_sacct(data_text("sacct_running_pending.txt"))}


def test_command_asks_once_for_all_jobs_in_parsable_form():
    since = datetime(2026, 11, 27, 11, 25, 9).timestamp()
    argv = sacct_command(["14", "15", "22"], since)
    assert argv == [
        "sacct",
        "--parsable2",
        "--noheader",
        "--allocations",
        "--starttime=2026-11-27T11:25:09",
        "--format=JobID,JobIDRaw,State,ExitCode,Reason,Submit,Start,End,Elapsed,AllocTRES,NodeList",
        "--jobs=14,15,22",
    ]


def test_command_fields_match_the_columns_the_parser_reads():
    argv = sacct_command(["1"], 0.0)
    fields = next(a for a in argv if a.startswith("--format=")).removeprefix("--format=")
    assert tuple(fields.split(",")) == SACCT_FIELDS


def test_every_captured_job_becomes_one_record(mixed):
    assert sorted(mixed, key=int) == [str(n) for n in range(14, 23)]


def test_completed_job_reports_success_and_times(mixed):
    job = mixed["15"]
    assert job.state is SessionState.COMPLETED
    assert job.slurm_state == "COMPLETED"
    assert (job.exit_code, job.signal) == (0, 0)
    assert job.submitted_at == datetime(2026, 11, 27, 11, 25, 14).timestamp()
    assert job.started_at is not None and job.ended_at is not None
    assert job.node_list == "vm"
    assert job.reason is None


def test_failing_job_reports_its_exit_code(mixed):
    job = mixed["16"]
    assert job.state is SessionState.FAILED
    assert (job.exit_code, job.signal) == (3, 0)


def test_job_killed_by_a_signal_reports_the_signal(mixed):
    job = mixed["17"]
    assert job.state is SessionState.FAILED
    assert (job.exit_code, job.signal) == (0, 9)


def test_cancelled_job_keeps_slurms_wording_but_maps_to_cancelled(mixed):
    job = mixed["18"]
    assert job.slurm_state == "CANCELLED by 0"
    assert job.state is SessionState.CANCELLED
    assert job.elapsed_s == 7.0


def test_job_over_its_time_limit_times_out(mixed):
    job = mixed["14"]
    assert job.state is SessionState.TIMEOUT
    assert job.elapsed_s == 71.0
    assert job.ended_at - job.started_at == job.elapsed_s


def test_gpu_jobs_report_their_allocated_gpus(mixed):
    assert [mixed[j].gpus for j in ("20", "21", "22")] == [2, 2, 2]
    assert mixed["15"].gpus is None


def test_job_that_waited_for_gpus_started_after_it_was_submitted(mixed):
    job = mixed["22"]
    assert job.started_at - job.submitted_at == 46.0
    assert job.elapsed_s == 30.0


def test_running_and_pending_jobs_are_told_apart(live):
    assert live["20"].state is SessionState.RUNNING
    assert live["21"].state is SessionState.RUNNING
    assert live["22"].state is SessionState.PENDING


def test_running_job_has_a_start_but_no_end(live):
    job = live["20"]
    assert job.started_at is not None
    assert job.ended_at is None
    assert job.exit_code == 0
    assert job.gpus == 2


def test_pending_job_has_neither_start_nor_allocation(live):
    job = live["22"]
    assert job.started_at is None
    assert job.ended_at is None
    assert job.gpus is None
    # sacct in Slurm 22.05 does not carry the pending reason; squeue does (see test_slurm_squeue).
    assert job.reason is None


def test_job_that_never_ran_has_no_node_list(live, mixed):
    assert live["22"].node_list is None
    assert mixed["19"].node_list is None


def test_hand_written_states_follow_the_real_format(data_text):
    records = {r.job_id: r for r in parse_sacct(data_text("sacct_handwritten_states.txt"))}
    assert {job_id: r.state for job_id, r in records.items()} == {
        "101": SessionState.OUT_OF_MEMORY,
        "102": SessionState.NODE_FAIL,
        "103": SessionState.PREEMPTED,
        "104": SessionState.REQUEUED,
        "105": SessionState.TIMEOUT,
    }
    assert [records[j].gpus for j in ("101", "102", "103", "104", "105")] == [2, 3, 4, 1, 8]
    assert records["105"].elapsed_s == 2 * 86400 + 3600
    assert records["103"].signal == 15


def test_warnings_and_lines_of_other_shapes_are_skipped(data_text):
    text = (
        "sacct: error: slurmdbd: Getting response to message type: DBD_GET_JOBS_COND\n"
        + data_text("sacct_mixed.txt")
        + "\n"
        + "1|2|3\n"
        + "99|99|NOT_A_STATE|0:0|None|Unknown|Unknown|Unknown|00:00:00||\n"
    )
    assert len(parse_sacct(text)) == 9


def test_empty_output_gives_no_records():
    assert parse_sacct("") == []
