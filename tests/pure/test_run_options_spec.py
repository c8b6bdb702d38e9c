"""The spec's dataset and capture fields, and the checks of ``nsml-hpc set`` values (pure)."""

from __future__ import annotations

import pytest

from nsml_hpc.errors import SpecError
from nsml_hpc.job.spec import (
    DatasetUse,
    SessionSpec,
    parse_dataset_ref,
    validate_spec,
    validate_stdout_pattern,
)
from nsml_hpc.sessions.hparams import coerce_like, parse_change


def test_a_dataset_and_capture_travel_through_session_json() -> None:
    spec = SessionSpec(
        project="p",
        script="train.py",
        dataset=DatasetUse("mnist", 2, True, "/r/.datasets/mnist/2/data"),
        capture_stdout=True,
        stdout_pattern=r"Iter (?P<step>\d+): loss (?P<loss>\S+)",
    )
    again = SessionSpec.from_dict(spec.to_dict())
    assert again == spec and again.captures_stdout
    old = spec.to_dict()
    for key in ("dataset", "capture_stdout", "stdout_pattern"):
        old.pop(key)
    assert SessionSpec.from_dict(old).dataset is None  # session.json of older releases
    assert SessionSpec(project="p", script="t.py", stdout_pattern="(?P<a>x)").captures_stdout


@pytest.mark.parametrize(
    ("text", "expected"), [("mnist", ("mnist", None)), ("mnist:3", ("mnist", 3))]
)
def test_dataset_refs(text: str, expected: tuple[str, int | None]) -> None:
    assert parse_dataset_ref(text) == expected


@pytest.mark.parametrize("text", ["", "../up", "a b", ".hidden", "mnist:0", "mnist:x", "m:1:2"])
def test_bad_dataset_refs_are_refused(text: str) -> None:
    with pytest.raises(SpecError):
        parse_dataset_ref(text)


@pytest.mark.parametrize(
    "use",
    [
        DatasetUse("mnist", 0, False, "/x"),
        DatasetUse("mnist", 1, False, "relative/path"),
        DatasetUse("mnist", 1, False, "/x\ny"),
        DatasetUse("../x", 1, False, "/x"),
    ],
)
def test_a_bad_dataset_in_a_spec_is_refused(use: DatasetUse) -> None:
    with pytest.raises(SpecError):
        validate_spec(SessionSpec(project="p", script="t.py", dataset=use))


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("(", "not a regular expression"),
        (r"Iter (\d+)", "named group per metric"),
        (r"(?P<step>\d+)", "named group per metric"),
        ("a\nb", "one line"),
        ("x" * 1001, "one line"),
    ],
)
def test_bad_patterns_are_refused(pattern: str, words: str) -> None:
    with pytest.raises(SpecError, match=words):
        validate_stdout_pattern(pattern)


def test_set_values_keep_the_current_type() -> None:
    assert coerce_like("lr", 0.1, "0.01") == 0.01
    assert coerce_like("lr", 0.1, "1") == 1.0 and isinstance(coerce_like("lr", 0.1, "1"), float)
    assert coerce_like("epochs", 3, "5") == 5
    assert coerce_like("amp", True, "false") is False
    assert coerce_like("optim", "adam", "5") == "5"
    for key, current, text, words in (
        ("epochs", 3, "2.5", "whole number"),
        ("lr", 0.1, "fast", "is a number"),
        ("amp", True, "1", "true or false"),
        ("epochs", 3, "true", "whole number"),
    ):
        with pytest.raises(SpecError, match=words):
            coerce_like(key, current, text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("lr", "KEY=VALUE"),
        ("1lr=0.1", "not a hyperparameter name"),
        ("lr=0.1\n0.2", "newline"),
        ("lr=\x1b[31m", "control character"),
        ("lr=" + "9" * 1001, "longer than"),
    ],
)
def test_bad_set_changes_are_refused(text: str, words: str) -> None:
    with pytest.raises(SpecError, match=words):
        parse_change("set", text)
    assert parse_change("set", "batch-size=32") == ("batch_size", "32")
