"""What a job writes never reaches a terminal as a control sequence: the one rule
(nsml_hpc.job.text), ingestion refusing hostile names with their line numbers, the escapes
every table applies, and session names that say whose."""

from __future__ import annotations

import json
import re

import pytest

from nsml_hpc.catalog.sessions import parse_session_ref
from nsml_hpc.errors import SpecError
from nsml_hpc.formatting import format_metrics, printable_tree, table
from nsml_hpc.job.spec import SessionSpec, validate_spec
from nsml_hpc.job.text import has_control_characters, name_problem, printable
from nsml_hpc.runfiles.scrape import parse_event_lines, parse_metric_lines

# What a terminal may act on: C0, DEL, C1, line/paragraph separators, bidi formatting.
RAW_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)

HOSTILE = [
    "\x1b]0;PWNED-TITLE\x07loss",  # OSC: retitles the terminal
    "\x1b]52;c;cGF3bmVk\x07acc",  # OSC 52: writes the clipboard
    "acc\x1b[31mRED",  # CSI: colours
    "\x9b31mC1-CSI",  # the one-byte CSI
    "x\ny",
    "carriage\rreturn",
    "nul\x00byte",
    "bidi\u202eevil\u202c",
    "iso\u2066late\u2069",
    "line\u2028sep",
    "del\x7f",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_every_hostile_name_is_seen_and_escaped_to_one_visible_line(name: str) -> None:
    assert has_control_characters(name)
    shown = printable(name)
    assert not RAW_CONTROL.search(shown)
    assert "\n" not in shown and "\r" not in shown
    assert "\\" in shown  # the escape is visible


def test_escapes_read_as_the_usual_notation() -> None:
    assert printable("\x1b]0;T\x07x") == "\\x1b]0;T\\x07x"
    assert printable("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert printable("\u202eevil") == "\\u202eevil"
    assert printable("\x9b") == "\\x9b"
    assert printable("plain ünïcode ✓ 日本") == "plain ünïcode ✓ 日本"
    assert printable(3.5) == "3.5"


def test_name_problems_say_why() -> None:
    assert name_problem("val_loss") is None
    assert "control characters" in (name_problem("a\x1b[31m") or "")
    assert "\x1b" not in (name_problem("a\x1b[31m") or "")
    assert "at most 200" in (name_problem("n" * 201) or "")
    assert "empty" in (name_problem("") or "")


def test_hostile_metric_names_are_refused_with_their_line_numbers_and_the_rest_is_kept() -> None:
    lines = [
        {"step": 0, "loss": 1.0},
        {"step": 1, "loss": 0.9, "\x1b]0;PWNED\x07x": 5.0},
        {"step": 2, "loss": 0.8, "x\ny": 1.0, "acc\x1b[31m": 2.0},
        {"step": 3, "n" * 5000: 1.0},
        {"step": 4, "acc": 0.5},
    ]
    chunk = b"".join(json.dumps(line).encode() + b"\n" for line in lines) + b"not json\n"
    batch = parse_metric_lines(chunk, 0, session_id=7)
    names = {point[4] for point in batch.points}
    assert names == {"loss", "acc"}
    assert [point[2] for point in batch.points if point[4] == "loss"] == [0, 1, 2]
    assert batch.malformed == 4  # lines 2, 3, 4 (hostile names) and 6 (not JSON)
    assert [line for line, _ in batch.problems] == [2, 3, 4, 6]
    for _, why in batch.problems:
        assert not RAW_CONTROL.search(why)
    assert "control characters" in batch.problems[0][1]
    assert "5000 characters" in batch.problems[2][1]


def test_hostile_event_names_are_refused_with_their_line_numbers() -> None:
    chunk = (
        json.dumps({"event": "started", "time": 1.0}).encode()
        + b"\n"
        + json.dumps({"event": "x\x1b[2J", "time": 2.0}).encode()
        + b"\n"
    )
    batch = parse_event_lines(chunk, session_id=1, first_line=10)
    assert [event["kind"] for event in batch.events] == ["started"]
    assert batch.malformed == 1 and batch.problems[0][0] == 12


def test_tables_and_metric_texts_escape_every_cell() -> None:
    text = table(["NAME", "ME\x1bMO"], [["a\nb", "\x1b]0;T\x07"], ["ok", "\u202ex"]])
    assert not RAW_CONTROL.search(text)
    assert len(text.splitlines()) == 3  # a newline in a cell never breaks the table
    assert "\x1b" not in format_metrics({"\x1b[31mred": 1.0, "loss": 0.5})
    tree = printable_tree({"k\n": ["\x1b", {"x": "\u202e"}], "n": 3})
    assert tree == {"k\\n": ["\\x1b", {"x": "\\u202e"}], "n": 3}


def test_hyperparameter_values_with_control_characters_are_refused_at_submit() -> None:
    spec = SessionSpec(project="p", script="t.py", args=["--tag", "a\x1b]0;T\x07"])
    with pytest.raises(SpecError, match="hyperparameter --tag has control characters"):
        validate_spec(spec)
    validate_spec(SessionSpec(project="p", script="t.py", args=["--tag", "plain"]))


@pytest.mark.parametrize(
    ("text", "owner", "project", "number"),
    [("team/3", None, "team", 3), ("alice/team/3", "alice", "team", 3)],
)
def test_session_names_say_whose(text: str, owner: str | None, project: str, number: int) -> None:
    ref = parse_session_ref(text)
    assert (ref.owner, ref.project, ref.number) == (owner, project, number)
    assert ref.text == text


@pytest.mark.parametrize("text", ["team", "team/x", "a/b/c/3", "/team/3", "team/3/", "al ice/t/3"])
def test_malformed_session_names_are_one_clear_error(text: str) -> None:
    with pytest.raises(SpecError, match="PROJECT/NUMBER or USER/PROJECT/NUMBER"):
        parse_session_ref(text)


def test_report_refuses_a_hostile_metric_name_in_the_job() -> None:
    import nsml_hpc

    with pytest.raises(ValueError, match="control characters"):
        nsml_hpc.report(step=1, **{"\x1b]0;T\x07": 1.0})
    with pytest.raises(ValueError, match="at most 200"):
        nsml_hpc.report(step=1, **{"n" * 300: 1.0})
