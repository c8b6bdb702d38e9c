"""Pure helpers of the local CLI backend, on sbatch/squeue messages captured from a real Slurm."""

from __future__ import annotations

import pytest

from nsml_hpc.backends.base import CommandResult
from nsml_hpc.backends.cli import parse_job_id, slurm_error_line
from nsml_hpc.errors import BackendError


def _failed(argv0: str, stderr: str, returncode: int = 1) -> CommandResult:
    return CommandResult(
        argv=[argv0, "--parsable"], returncode=returncode, stdout="", stderr=stderr
    )


@pytest.mark.parametrize(
    ("stdout", "job_id"),
    [("36", "36"), ("36\n", "36"), ("93;nsml\n", "93"), ("  7 ; nsml ", "7")],
)
def test_job_id_is_read_from_parsable_output(stdout, job_id):
    assert parse_job_id(stdout) == job_id


def test_job_id_is_the_last_line_after_warnings():
    assert parse_job_id("sbatch: warning: something odd\n41\n") == "41"


def test_real_sbatch_output_gives_its_job_id(data_text):
    assert parse_job_id(data_text("sbatch_ok_stdout.txt")).isdigit()


@pytest.mark.parametrize(
    "stdout", ["", "   \n", "Submitted batch job", "abc", "-1", ";nsml", "3.5"]
)
def test_output_without_a_job_id_is_a_backend_error(stdout):
    with pytest.raises(BackendError, match="sbatch printed no job id"):
        parse_job_id(stdout)


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        (
            "sbatch_error_partition.txt",
            "invalid partition specified: nosuch; Invalid partition name specified",
        ),
        ("sbatch_error_account.txt", "Invalid account or account/partition combination specified"),
        ("sbatch_error_gres.txt", "Requested node configuration is not available"),
    ],
)
def test_sbatch_refusal_becomes_one_clean_line(data_text, sample, message):
    line = slurm_error_line(_failed("sbatch", data_text(sample)))
    assert line == message
    assert "\n" not in line
    assert not line.startswith("sbatch")


def test_squeue_unknown_job_message_is_kept_whole(data_text):
    line = slurm_error_line(_failed("squeue", data_text("squeue_unknown_job_stderr.txt")))
    assert line == "slurm_load_jobs error: Invalid job id specified"


def test_fatal_prefix_is_removed_too():
    assert slurm_error_line(_failed("sacct", "sacct: fatal: Bad starttime\n")) == "Bad starttime"


def test_every_distinct_error_line_is_kept_in_order_without_chatter():
    stderr = "sbatch: warning: x\nsbatch: error: first\nnoise\nsbatch: error: second\n"
    assert slurm_error_line(_failed("sbatch", stderr)) == "first; second"


def test_without_an_error_word_the_last_line_is_used():
    assert slurm_error_line(_failed("scancel", "\n  Kill job failed  \n\n")) == "Kill job failed"


def test_silent_failure_reports_its_exit_code():
    assert slurm_error_line(_failed("sbatch", "", returncode=255)) == "exit code 255"
