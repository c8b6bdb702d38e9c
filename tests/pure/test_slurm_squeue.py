"""The squeue fallback command and its parser on output captured from a real Slurm."""

from __future__ import annotations

import pytest

from nsml_hpc.slurm.squeue import parse_squeue, squeue_command
from nsml_hpc.slurm.states import SessionState


@pytest.fixture
def pending(data_text):
    return {record.job_id: record for record in parse_squeue(data_text("squeue_pending.txt"))}


@pytest.fixture
def finished(data_text):
    return {record.job_id: record for record in parse_squeue(data_text("squeue_finished.txt"))}


def test_command_asks_once_for_all_jobs_in_every_state():
    assert squeue_command(["20", "21", "22"]) == [
        "squeue",
        "--noheader",
        "--states=all",
        "--array",
        "--format=%i|%T|%r|%b|%N",
        "--jobs=20,21,22",
    ]


def test_pending_job_reports_its_reason(pending):
    job = pending["159"]
    assert job.state is SessionState.PENDING
    assert job.reason == "Resources"
    assert job.node_list is None


def test_running_jobs_report_their_node_and_no_reason(pending):
    for job_id in ("157", "158"):
        assert pending[job_id].state is SessionState.RUNNING
        assert pending[job_id].node_list == "vm"
        assert pending[job_id].reason is None


def test_requested_gpus_are_read_from_gres(pending):
    assert {job_id: r.gpus for job_id, r in pending.items()} == {"157": 2, "158": 2, "159": 2}


def test_squeue_leaves_accounting_fields_to_sacct(pending):
    job = pending["157"]
    assert job.exit_code is None
    assert job.submitted_at is None
    assert job.elapsed_s is None


def test_recently_finished_jobs_show_their_final_state_and_reason(finished):
    # jobs of tests/data/capture_slurm_samples.py (tests/data/README.md)
    assert finished["148"].state is SessionState.TIMEOUT
    assert finished["148"].reason == "TimeLimit"
    assert finished["150"].state is SessionState.FAILED
    assert finished["150"].reason == "NonZeroExitCode"
    assert finished["152"].state is SessionState.CANCELLED
    assert finished["149"].gpus is None  # %b prints N/A without a GPU request


@pytest.mark.parametrize(
    ("gres", "gpus"),
    [("gres:gpu:2", 2), ("gres/gpu:4", 4), ("gres:gpu:a100:3", 3), ("N/A", None), ("", None)],
)
def test_gpu_count_is_read_from_every_gres_spelling(gres, gpus):
    (record,) = parse_squeue(f"7|RUNNING|None|{gres}|vm\n")
    assert record.gpus == gpus


def test_lines_of_other_shapes_and_unknown_states_are_skipped():
    text = (
        "slurm_load_jobs error: Invalid job id specified\n"
        "7|WEIRD|None|N/A|\n"
        "8|PENDING|Priority|N/A|\n"
    )
    (record,) = parse_squeue(text)
    assert (record.job_id, record.reason) == ("8", "Priority")


def test_fields_are_stripped_of_padding():
    (record,) = parse_squeue("  9 | RUNNING | None | N/A | vm \n")
    assert (record.job_id, record.slurm_state, record.node_list) == ("9", "RUNNING", "vm")
