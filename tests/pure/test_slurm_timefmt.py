"""Slurm's elapsed-time and timestamp formats."""

from __future__ import annotations

import time

import pytest

from nsml_hpc.slurm.timefmt import (
    format_duration,
    parse_duration,
    parse_timestamp,
    relative_start,
)


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
