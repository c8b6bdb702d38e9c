"""Slurm's durations (the one parser, nsml_hpc.job.duration) and timestamps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from nsml_hpc.job.duration import parse_duration
from nsml_hpc.slurm.sacct import SACCT_FIELDS
from nsml_hpc.slurm.timefmt import format_duration, parse_timestamp
from nsml_hpc.slurm.user_queue import QUEUE_FIELDS


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:00:00", 0.0),
        ("00:01:11", 71.0),
        ("01:00:00", 3600.0),
        ("2-01:00:00", 2 * 86400 + 3600.0),
        ("12:34", 12 * 60 + 34.0),
        ("00:01.500", 1.5),
        (" 00:00:30\n", 30.0),
        ("0:03", 3.0),  # squeue %M
        ("365-00:00:00", 365 * 86400.0),
        # the --time forms Slurm reads: a lone number is minutes; D-H, D-H:M
        ("30", 1800.0),
        ("30:30", 1830.0),
        ("2-12", 2 * 86400 + 12 * 3600.0),
        ("2-12:30", 2 * 86400 + 12 * 3600 + 1800.0),
    ],
)
def test_duration_forms_become_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["abc", "1h", "-5", "1-", "1:2:3:4", "30 min", "1:-2", "5.5", "2-12.5", "\u0663\u0660"]
)
def test_anything_else_is_not_a_duration(text):
    with pytest.raises(ValueError, match="not a Slurm duration"):
        parse_duration(text)


def test_fractions_can_be_refused_as_slurm_refuses_them_in_time():
    assert parse_duration("01:30.5") == 90.5
    with pytest.raises(ValueError):
        parse_duration("01:30.5", fractions=False)
    assert parse_duration("01:30", fractions=False) == 90.0


def test_every_captured_elapsed_time_and_time_limit_reads(data_text: Callable[[str], str]) -> None:
    elapsed = SACCT_FIELDS.index("Elapsed")
    seen = []
    for name in ("sacct_mixed.txt", "sacct_running_pending.txt"):
        for line in data_text(name).splitlines():
            seen.append(parse_duration(line.split("|")[elapsed]))
    assert 71.0 in seen and all(value is not None for value in seen)
    used, limit = QUEUE_FIELDS.index("%M"), QUEUE_FIELDS.index("%l")
    rows = [line.split("|") for line in data_text("squeue_user_queue.txt").splitlines()]
    assert {parse_duration(row[used]) for row in rows} <= {0.0, 3.0}
    assert [parse_duration(row[limit]) for row in rows][:3] == [365 * 86400.0, 365 * 86400.0, None]


@pytest.mark.parametrize(
    "text", ["", "   ", "UNLIMITED", "unlimited", "INVALID", "Partition_Limit", "NONE"]
)
def test_unbounded_or_missing_durations_are_unknown(text):
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0, "00:00"),
        (59.9, "00:59"),
        (71, "01:11"),
        (3600, "01:00:00"),
        (93784, "1-02:03:04"),
    ],
)
def test_durations_print_compactly(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["1-02:03:04", "02:03:04", "03:04", "00:00"])
def test_printed_duration_reads_back_to_the_same_seconds(text):
    assert format_duration(parse_duration(text)) == text


def test_timestamp_is_read_as_local_time():
    expected = datetime(2026, 11, 27, 11, 25, 14).timestamp()
    assert parse_timestamp("2026-11-27T11:25:14") == expected


@pytest.mark.parametrize("text", ["", "Unknown", "None", "N/A", "  Unknown "])
def test_missing_timestamps_are_none(text):
    assert parse_timestamp(text) is None
