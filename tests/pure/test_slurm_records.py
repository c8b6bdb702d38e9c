"""Helpers that turn sacct/squeue fields into a JobRecord."""

from __future__ import annotations

import pytest

from nsml_hpc.slurm.records import JobRecord, clean_reason, parse_exit_code
from nsml_hpc.slurm.states import SessionState


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0:0", (0, 0)),
        ("3:0", (3, 0)),
        ("0:9", (0, 9)),
        ("0:15", (0, 15)),
        ("1", (1, None)),
        ("", (None, None)),
        ("  ", (None, None)),
    ],
)
def test_exit_code_splits_into_code_and_signal(text, expected):
    assert parse_exit_code(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("None", None), ("(null)", None), ("", None), (" Resources ", "Resources")],
)
def test_reason_placeholders_mean_no_reason(text, expected):
    assert clean_reason(text) == expected


def test_job_record_leaves_unknown_fields_empty():
    record = JobRecord(job_id="7", state=SessionState.PENDING, slurm_state="PENDING")
    assert record.exit_code is None
    assert record.gpus is None
    assert record.node_list is None
