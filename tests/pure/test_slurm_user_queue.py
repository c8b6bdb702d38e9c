"""The user's queue (one squeue call) and its parser, on output captured from the sandbox."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nsml_hpc.errors import SpecError
from nsml_hpc.slurm.user_queue import parse_user_queue, user_queue_command


def test_command_asks_for_one_user_with_the_name_last() -> None:
    argv = user_queue_command("alice")
    assert argv[:3] == ["squeue", "--noheader", "--user=alice"]
    assert argv[-1].endswith("|%j")


@pytest.mark.parametrize("user", ["", "a b", "-x", "a;rm", "a\nb"])
def test_a_strange_user_name_is_refused(user: str) -> None:
    with pytest.raises(SpecError):
        user_queue_command(user)


def test_captured_queue_has_running_and_pending_jobs(data_text: Callable[[str], str]) -> None:
    jobs = {job.job_id: job for job in parse_user_queue(data_text("squeue_user_queue.txt"))}
    assert jobs["242"].state == "RUNNING"
    assert (jobs["242"].gpus, jobs["242"].where, jobs["242"].reason) == (1, "vm", None)
    assert jobs["243"].name == "cap|pipe"  # a '|' in the job name survives
    assert (jobs["244"].state, jobs["244"].reason, jobs["244"].gpus) == ("PENDING", "Resources", 4)
    assert jobs["244"].start_at is not None and jobs["244"].submitted_at is not None
    assert jobs["244"].time_limit == "UNLIMITED"


def test_short_lines_are_skipped() -> None:
    assert parse_user_queue("1|RUNNING\n") == []
