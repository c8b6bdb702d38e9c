"""Slurm's elapsed-time and timestamp formats."""

from __future__ import annotations

from datetime import datetime

import pytest

from nsml_hpc.slurm.timefmt import format_duration, parse_duration, parse_timestamp


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
    ],
)
def test_duration_forms_become_seconds(text, seconds):
    assert parse_duration(text) == seconds


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
