"""Incremental reading of metrics.jsonl / events.jsonl: whole lines only, bad lines skipped."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from nsml_hpc.runfiles import scrape
from nsml_hpc.runfiles.scrape import (
    MetricBatch,
    parse_event_lines,
    parse_metric_lines,
    read_new_lines,
)

POINT_KEYS = ("session_id", "line", "step", "time", "name", "value")


def rows(batch: MetricBatch) -> list[dict[str, Any]]:
    """The batch's points as dicts, whether the module stores them as dicts or as tuples."""
    columns = getattr(scrape, "POINT_COLUMNS", POINT_KEYS)
    return [p if isinstance(p, dict) else dict(zip(columns, p, strict=True)) for p in batch.points]


@pytest.fixture
def log(tmp_path):
    return tmp_path / "metrics.jsonl"


# --- read_new_lines ------------------------------------------------------------------------


def test_partial_last_line_waits_for_its_newline(log):
    log.write_bytes(b'{"step":1}\n{"step":2}\n{"st')
    chunk, offset = read_new_lines(log, 0)
    assert chunk == b'{"step":1}\n{"step":2}\n'
    assert offset == len(chunk)


def test_reading_resumes_at_the_offset_and_picks_up_the_completed_line(log):
    log.write_bytes(b'{"step":1}\n{"st')
    _, offset = read_new_lines(log, 0)
    with log.open("ab") as handle:
        handle.write(b'ep":2}\n{"step":3}\n')
    chunk, new_offset = read_new_lines(log, offset)
    assert chunk == b'{"step":2}\n{"step":3}\n'
    assert new_offset == log.stat().st_size


def test_nothing_new_keeps_the_offset(log):
    log.write_bytes(b'{"step":1}\n')
    chunk, offset = read_new_lines(log, 11)
    assert (chunk, offset) == (b"", 11)


def test_file_without_any_newline_yields_nothing(log):
    log.write_bytes(b'{"step":1')
    assert read_new_lines(log, 0) == (b"", 0)


def test_file_that_shrank_below_the_offset_yields_nothing(log):
    log.write_bytes(b'{"step":1}\n')
    assert read_new_lines(log, 500) == (b"", 500)


def test_missing_file_yields_nothing(tmp_path):
    assert read_new_lines(tmp_path / "absent.jsonl", 7) == (b"", 7)


def test_read_limit_still_ends_on_a_line_boundary(log):
    log.write_bytes(b"aaaa\nbbbb\ncccc\n")
    chunk, offset = read_new_lines(log, 0, limit=12)
    assert (chunk, offset) == (b"aaaa\nbbbb\n", 10)
    assert read_new_lines(log, offset, limit=12) == (b"cccc\n", 15)


def test_line_longer_than_the_limit_is_never_cut(log):
    log.write_bytes(b"x" * 100 + b"\n")
    assert read_new_lines(log, 0, limit=50) == (b"", 0)


# --- parse_metric_lines ----------------------------------------------------------------------


def test_each_numeric_field_becomes_one_point_with_its_line_step_and_time():
    chunk = b'{"step": 3, "time": 1700000000.5, "loss": 0.25, "acc": 1}\n'
    batch = parse_metric_lines(chunk, first_line=10, session_id=42)
    assert rows(batch) == [
        {
            "session_id": 42,
            "line": 10,
            "step": 3,
            "time": 1700000000.5,
            "name": "loss",
            "value": 0.25,
        },
        {
            "session_id": 42,
            "line": 10,
            "step": 3,
            "time": 1700000000.5,
            "name": "acc",
            "value": 1.0,
        },
    ]
    assert (batch.lines, batch.malformed, batch.last_step) == (1, 0, 3)
    assert batch.last_metrics == {"loss": 0.25, "acc": 1.0}


@pytest.mark.parametrize(
    "bad",
    [b"not json", b"[1, 2, 3]", b'{"step": 1, "loss": 0.', b'"text"', b"42", b"null", b""],
)
def test_malformed_line_is_counted_and_skipped_not_fatal(bad):
    chunk = b'{"step": 1, "loss": 1.0}\n' + bad + b'\n{"step": 2, "loss": 0.5}\n'
    batch = parse_metric_lines(chunk, first_line=0, session_id=1)
    assert batch.lines == 3
    assert batch.malformed == 1
    assert [(r["line"], r["step"], r["value"]) for r in rows(batch)] == [(0, 1, 1.0), (2, 2, 0.5)]


def test_non_finite_values_are_kept_as_gaps():
    chunk = b'{"step": 1, "a": NaN, "b": Infinity, "c": -Infinity, "d": 2}\n'
    batch = parse_metric_lines(chunk, first_line=0, session_id=1)
    assert {r["name"]: r["value"] for r in rows(batch)} == {
        "a": None,
        "b": None,
        "c": None,
        "d": 2.0,
    }
    assert batch.last_metrics["a"] is None


def test_json_dumps_of_python_nan_is_read_back_as_a_gap():
    chunk = (json.dumps({"step": 1, "loss": math.nan}) + "\n").encode()
    assert rows(parse_metric_lines(chunk, 0, 1))[0]["value"] is None


def test_bool_text_list_and_null_fields_are_not_metrics():
    chunk = (
        b'{"step": 1, "ok": true, "phase": "train", "xs": [1], "n": null, "m": {"a": 1}, "v": 3}\n'
    )
    assert [r["name"] for r in rows(parse_metric_lines(chunk, 0, 1))] == ["v"]


def test_a_missing_step_leaves_the_point_without_a_step():
    batch = parse_metric_lines(b'{"loss": 1}\n', 0, 1)
    assert [r["step"] for r in rows(batch)] == [None]
    assert batch.last_step is None
    assert batch.malformed == 0


@pytest.mark.parametrize("step", [b'"step": "7", ', b'"step": 1.5, ', b'"step": true, '])
def test_a_non_integer_step_makes_the_line_malformed(step):
    """Issue 15: such lines were ingested without a step and never counted."""
    chunk = b"{" + step + b'"loss": 1}\n'
    batch = parse_metric_lines(chunk, 0, 1)
    assert rows(batch) == []
    assert batch.malformed == 1
    assert batch.last_step is None


@pytest.mark.parametrize("when", [b'"yesterday"', b"true", b"null"])
def test_time_that_is_not_a_number_is_dropped(when):
    chunk = b'{"step": 1, "time": ' + when + b', "loss": 1}\n'
    assert rows(parse_metric_lines(chunk, 0, 1))[0]["time"] is None


def test_last_step_and_metrics_are_the_latest_seen():
    chunk = b'{"step": 1, "loss": 3}\n{"step": 2, "loss": 2, "acc": 0.5}\n{"loss": 1}\n'
    batch = parse_metric_lines(chunk, 0, 1)
    assert batch.last_step == 2
    assert batch.last_metrics == {"loss": 1.0, "acc": 0.5}


def test_line_numbers_continue_from_first_line():
    chunk = b'{"a": 1}\n{"a": 2}\n'
    assert [r["line"] for r in rows(parse_metric_lines(chunk, first_line=100, session_id=1))] == [
        100,
        101,
    ]


def test_crlf_line_endings_are_read_like_lf():
    batch = parse_metric_lines(b'{"a": 1}\r\n{"a": 2}\r\n', 0, 1)
    assert (batch.lines, batch.malformed, len(batch.points)) == (2, 0, 2)


@pytest.mark.parametrize("field", [b'"loss"', b'"time"'])
def test_integer_too_large_for_a_float_is_a_gap_not_a_crash(field):
    chunk = b'{"step": 1, ' + field + b": " + b"9" * 400 + b', "acc": 1}\n'
    batch = parse_metric_lines(chunk, 0, 1)
    assert (batch.lines, batch.malformed) == (1, 0)
    assert batch.last_metrics["acc"] == 1.0


# --- parse_event_lines -----------------------------------------------------------------------


def test_event_lines_become_rows_with_their_extra_data_as_json():
    chunk = b'{"event": "started", "time": 1700000000, "job_id": 36, "host": "vm", "pid": 9}\n'
    batch = parse_event_lines(chunk, session_id=5)
    assert batch.events == [
        {
            "session_id": 5,
            "at": 1700000000.0,
            "kind": "started",
            "job_id": "36",
            "data_json": '{"host": "vm", "job_id": 36, "pid": 9}',
        }
    ]
    assert (batch.lines, batch.malformed) == (1, 0)


@pytest.mark.parametrize(
    "bad",
    [b"garbage", b'["started"]', b'{"time": 1}', b'{"event": 3}', b'{"event": "ended"'],
)
def test_event_lines_without_an_event_name_are_malformed(bad):
    batch = parse_event_lines(b'{"event": "started"}\n' + bad + b"\n", session_id=5)
    assert [e["kind"] for e in batch.events] == ["started"]
    assert (batch.lines, batch.malformed) == (2, 1)


def test_event_without_time_or_job_id_keeps_them_empty():
    (event,) = parse_event_lines(b'{"event": "signal", "signal": 15}\n', 5).events
    assert (event["at"], event["job_id"], event["data_json"]) == (None, None, '{"signal": 15}')


def test_long_event_names_and_job_ids_are_cut_to_the_column_size():
    chunk = json.dumps({"event": "e" * 100, "job_id": "9" * 100}).encode() + b"\n"
    (event,) = parse_event_lines(chunk, 5).events
    assert len(event["kind"]) == 64
    assert len(event["job_id"]) == 64
