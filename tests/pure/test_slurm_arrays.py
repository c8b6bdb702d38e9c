"""Job arrays: MaxArraySize, splitting a sweep over several arrays, task id expansion."""

from __future__ import annotations

import pytest

from nsml_hpc.slurm.arrays import (
    array_spec,
    expand_task_ids,
    parse_max_array_size,
    split_counts,
)
from nsml_hpc.slurm.sacct import parse_sacct

SCONTROL_CONFIG = """Configuration data as of 2026-11-27T11:40:02
AccountingStorageBackupHost = (null)
MaxArraySize            = 1001
MaxJobCount             = 10000
"""


def test_max_array_size_is_read_from_scontrol_show_config() -> None:
    assert parse_max_array_size(SCONTROL_CONFIG) == 1001
    assert parse_max_array_size("MaxJobCount = 5\n") == 1001  # Slurm's default when absent


@pytest.mark.parametrize(
    ("count", "limit", "sizes"),
    [(4, 1001, [4]), (1001, 1001, [1001]), (1002, 1001, [1001, 1]), (10, 3, [3, 3, 3, 1])],
)
def test_sweeps_larger_than_max_array_size_are_split(
    count: int, limit: int, sizes: list[int]
) -> None:
    assert split_counts(count, limit) == sizes
    assert sum(split_counts(count, limit)) == count


def test_array_spec_limits_parallel_tasks() -> None:
    assert array_spec(4, None) == "0-3"
    assert array_spec(4, 2) == "0-3%2"
    assert array_spec(1, None) == "0"


def test_pending_task_ranges_expand_to_one_id_per_task() -> None:
    assert expand_task_ids("8_[2-4,7%2]") == ["8_2", "8_3", "8_4", "8_7"]
    assert expand_task_ids("8_3") == ["8_3"]
    assert expand_task_ids("42") == ["42"]


def test_sacct_line_for_pending_array_tasks_becomes_one_record_per_task() -> None:
    # Shape captured from the sandbox (facts file: `8_[2-9%2] PENDING (JobArrayTaskLimit)`),
    # in the epoch form every sacct call uses (SLURM_TIME_FORMAT=%s).
    line = (
        "8_[2-4%2]|8|PENDING|0:0|JobArrayTaskLimit|1796109362|Unknown|Unknown|"
        "00:00:00||None assigned|debug|root|normal|UNLIMITED|1|billing=1,cpu=1,node=1"
    )
    records = parse_sacct(line + "\n")
    assert [record.job_id for record in records] == ["8_2", "8_3", "8_4"]
    assert {record.reason for record in records} == {"JobArrayTaskLimit"}
