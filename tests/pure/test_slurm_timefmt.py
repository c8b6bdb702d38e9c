"""Slurm's durations (the one parser, nsml_hpc.job.duration) and timestamps."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from nsml_hpc.job.duration import parse_duration
from nsml_hpc.slurm.sacct import SACCT_FIELDS
from nsml_hpc.slurm.timefmt import (
    format_duration,
    format_time_limit,
    parse_timestamp,
    relative_start,
)
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
    assert 60.0 in seen and all(value is not None for value in seen)  # the TIMEOUT job's
    limit_column = SACCT_FIELDS.index("Timelimit")
    limits = {
        parse_duration(line.split("|")[limit_column])
        for line in data_text("sacct_mixed.txt").splitlines()
    }
    assert limits == {60.0, 300.0, 365 * 86400.0, None}  # None: UNLIMITED, Partition_Limit
    used, limit = QUEUE_FIELDS.index("%M"), QUEUE_FIELDS.index("%l")
    rows = [line.split("|") for line in data_text("squeue_user_queue.txt").splitlines()]
    assert {parse_duration(row[used]) for row in rows} <= {0.0, 3.0}
    assert [parse_duration(row[limit]) for row in rows] == [None, None, None]  # UNLIMITED


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


def test_timestamp_is_epoch_seconds_whatever_the_zone(monkeypatch):
    for zone in ("Asia/Seoul", "America/Los_Angeles", "UTC"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        assert parse_timestamp("1796109362") == 1796109362.0
    time.tzset()


@pytest.mark.parametrize("text", ["2026-11-27T11:25:14", "11:25:14", "-5", "1e9"])
def test_a_time_of_day_is_refused_because_its_zone_is_unknown(text):
    with pytest.raises(ValueError, match="not epoch seconds"):
        parse_timestamp(text)


@pytest.mark.parametrize(
    ("since", "now", "text"),
    [
        (100.0, 700.0, "now-600seconds"),
        (100.0, 700.2, "now-601seconds"),
        (800.0, 700.0, "now-0seconds"),
    ],
)
def test_start_times_are_relative_to_the_clusters_clock(since, now, text):
    assert relative_start(since, now) == text


@pytest.mark.parametrize("text", ["", "Unknown", "None", "N/A", "  Unknown ", "0"])
def test_missing_timestamps_are_none(text):
    assert parse_timestamp(text) is None


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (5, "00:05:00"),
        (60, "01:00:00"),
        (1439, "23:59:00"),
        (525600, "365-00:00:00"),
        (None, "UNLIMITED"),
    ],
)
def test_a_time_limit_prints_as_saccts_timelimit(minutes: int | None, text: str) -> None:
    """sacct's Timelimit column on the sandbox (22.05): 365-00:00:00, UNLIMITED."""
    assert format_time_limit(minutes) == text
    if minutes is not None:
        assert parse_duration(text) == minutes * 60
