"""The sacct command nsml-hpc runs, and its parser on output captured from a real Slurm
(with ``SLURM_TIME_FORMAT=%s``: every time is epoch seconds, whatever the zones)."""

from __future__ import annotations

import pytest

from nsml_hpc.slurm.sacct import SACCT_FIELDS, parse_sacct, sacct_command
from nsml_hpc.slurm.states import SessionState

# The jobs of tests/data/capture_slurm_samples.py, as captured (tests/data/README.md).
JOB = {
    "timeout": "148",
    "completed": "149",
    "failed": "150",
    "signalled": "151",
    "cancel_running": "152",
    "cancel_pending": "153",
    "small": "155",
    "gpu1": "157",
    "gpu2": "158",
    "gpu3": "159",
}


@pytest.fixture
def mixed(data_text):
    """Every captured job once all had ended, by role."""
    records = {record.job_id: record for record in parse_sacct(data_text("sacct_mixed.txt"))}
    return {role: records[job_id] for role, job_id in JOB.items()}


@pytest.fixture
def live(data_text):
    """The three GPU jobs while the third waited for GPUs, by role."""
    text = data_text("sacct_running_pending.txt")
    records = {record.job_id: record for record in parse_sacct(text)}
    return {role: records[JOB[role]] for role in ("gpu1", "gpu2", "gpu3")}


def test_command_asks_once_for_all_jobs_in_parsable_form():
    argv = sacct_command(["14", "15", "22"], since=1_000_000.0, now=1_000_600.4)
    assert argv == [
        "sacct",
        "--parsable2",
        "--noheader",
        "--allocations",
        "--starttime=now-601seconds",
        "--format=JobID,JobIDRaw,State,ExitCode,Reason,Submit,Start,End,Elapsed,AllocTRES,"
        "NodeList,Partition,Account,QOS,Timelimit,NNodes,ReqTRES",
        "--jobs=14,15,22",
    ]


def test_start_time_is_relative_to_the_clusters_clock_so_no_zone_is_involved():
    argv = sacct_command(["1"], since=5000.0, now=5000.0)
    assert "--starttime=now-0seconds" in argv
    future = sacct_command(["1"], since=9000.0, now=5000.0)  # a clock ahead: never "the future"
    assert "--starttime=now-0seconds" in future


def test_command_fields_match_the_columns_the_parser_reads():
    argv = sacct_command(["1"], 0.0)
    fields = next(a for a in argv if a.startswith("--format=")).removeprefix("--format=")
    assert tuple(fields.split(",")) == SACCT_FIELDS


def test_every_captured_job_becomes_one_record(data_text):
    records = parse_sacct(data_text("sacct_mixed.txt"))
    assert sorted(r.job_id for r in records) == sorted(JOB.values())


def test_completed_job_reports_success_and_epoch_times(mixed):
    job = mixed["completed"]
    assert job.state is SessionState.COMPLETED
    assert job.slurm_state == "COMPLETED"
    assert (job.exit_code, job.signal) == (0, 0)
    assert (job.submitted_at, job.started_at, job.ended_at) == (1796109362, 1796109364, 1796109364)
    assert job.node_list == "vm"
    assert job.reason is None


def test_failing_job_reports_its_exit_code(mixed):
    job = mixed["failed"]
    assert job.state is SessionState.FAILED
    assert (job.exit_code, job.signal) == (3, 0)


def test_job_killed_by_a_signal_reports_the_signal(mixed):
    job = mixed["signalled"]
    assert job.state is SessionState.FAILED
    assert (job.exit_code, job.signal) == (0, 9)


def test_cancelled_job_keeps_slurms_wording_but_maps_to_cancelled(mixed):
    job = mixed["cancel_running"]
    assert job.slurm_state == "CANCELLED by 0"
    assert job.state is SessionState.CANCELLED
    assert job.elapsed_s == 1.0


def test_job_over_its_time_limit_times_out(mixed):
    job = mixed["timeout"]
    assert job.state is SessionState.TIMEOUT
    assert job.elapsed_s == 60.0
    assert job.ended_at - job.started_at == job.elapsed_s
    assert job.time_limit == "00:01:00"


def test_gpu_jobs_report_their_allocated_gpus(mixed):
    assert [mixed[j].gpus for j in ("gpu1", "gpu2", "gpu3")] == [2, 2, 2]
    assert mixed["completed"].gpus == 0  # a TRES without gres/gpu: no GPU, not "unknown"


def test_what_slurm_gave_the_job_is_read_back(mixed):
    small = mixed["small"]
    assert (small.partition, small.account, small.qos) == ("small", "root", "normal")
    assert (small.time_limit, small.nodes) == ("00:05:00", 1)
    assert mixed["completed"].partition == "debug"


def test_job_that_waited_for_gpus_started_after_it_was_submitted(mixed):
    job = mixed["gpu3"]
    assert job.started_at - job.submitted_at == 31.0
    assert job.elapsed_s == 30.0


def test_running_and_pending_jobs_are_told_apart(live):
    assert live["gpu1"].state is SessionState.RUNNING
    assert live["gpu2"].state is SessionState.RUNNING
    assert live["gpu3"].state is SessionState.PENDING


def test_running_job_has_a_start_but_no_end(live):
    job = live["gpu1"]
    assert job.started_at is not None
    assert job.ended_at is None
    assert job.exit_code == 0
    assert job.gpus == 2


def test_pending_job_has_no_start_and_reports_the_gpus_it_asked_for(live):
    job = live["gpu3"]
    assert job.started_at is None
    assert job.ended_at is None
    assert job.gpus == 2  # from ReqTRES: a pending job has no AllocTRES yet
    assert (job.partition, job.nodes) == ("debug", 1)
    # sacct in Slurm 22.05 does not carry the pending reason; squeue does (see test_slurm_squeue).
    assert job.reason is None


def test_job_that_never_ran_has_no_node_list(live, mixed):
    assert live["gpu3"].node_list is None
    assert mixed["cancel_pending"].node_list is None


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
    ended, started = records["105"].ended_at, records["105"].started_at
    assert ended is not None and started is not None
    assert ended - started == 2 * 86400 + 3600
    assert (records["105"].qos, records["105"].nodes) == ("long", 2)
    assert records["103"].signal == 15


def test_warnings_and_lines_of_other_shapes_are_skipped(data_text):
    text = (
        "sacct: error: slurmdbd: Getting response to message type: DBD_GET_JOBS_COND\n"
        + data_text("sacct_mixed.txt")
        + "\n"
        + "1|2|3\n"
        + "99|99|NOT_A_STATE|0:0|None|Unknown|Unknown|Unknown|00:00:00||||||||\n"
    )
    assert len(parse_sacct(text)) == len(JOB)


def test_a_time_of_day_is_refused_because_its_zone_is_unknown(data_text):
    line = data_text("sacct_mixed.txt").splitlines()[0].split("|")
    line[5] = "2026-12-01T07:16:02"
    with pytest.raises(ValueError, match="not epoch seconds"):
        parse_sacct("|".join(line) + "\n")


def test_empty_output_gives_no_records():
    assert parse_sacct("") == []
