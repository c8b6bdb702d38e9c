"""Hyperparameters read from, and written back to, a training script's command line."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsml_hpc.job.hparams import coerce, format_args, parse_hyperparameters


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("-3", -3),
        ("0.1", 0.1),
        ("-0.5", -0.5),
        (".5", 0.5),
        ("1e-4", 1e-4),
        ("true", True),
        ("False", False),
        ("adam", "adam"),
        ("inf", math.inf),
        ("-inf", -math.inf),
        ("infinity", "infinity"),
        ("", ""),
    ],
)
def test_words_become_typed_values(text, value):
    result = coerce(text)
    assert result == value
    assert type(result) is type(value)


def test_nan_word_is_a_float_nan():
    value = coerce("nan")
    assert isinstance(value, float) and math.isnan(value)


def test_space_and_equals_forms_are_both_read():
    assert parse_hyperparameters(["--lr", "0.1", "--epochs=3"]) == {"lr": 0.1, "epochs": 3}


def test_negative_numbers_are_values_not_flags():
    args = ["--lr", "-0.1", "--offset", "-5", "--eps", "-.5", "--scale", "-1e-3"]
    assert parse_hyperparameters(args) == {"lr": -0.1, "offset": -5, "eps": -0.5, "scale": -1e-3}


def test_flag_without_value_is_true():
    assert parse_hyperparameters(["--amp", "--lr", "1", "--verbose"]) == {
        "amp": True,
        "lr": 1,
        "verbose": True,
    }


def test_only_the_first_equals_sign_splits_name_and_value():
    assert parse_hyperparameters(["--a=b=c", "--empty="]) == {"a": "b=c", "empty": ""}


def test_double_dash_stops_parsing():
    assert parse_hyperparameters(["--lr", "1", "--", "--after", "2"]) == {"lr": 1}


def test_positionals_are_skipped_and_dashes_in_names_become_underscores():
    args = ["data/", "--batch-size", "64", "extra", "-v"]
    assert parse_hyperparameters(args) == {"batch_size": 64, "v": True}


def test_later_occurrence_of_a_name_wins():
    assert parse_hyperparameters(["--lr", "1", "--lr=2"]) == {"lr": 2}


def test_value_with_a_newline_is_kept_whole():
    assert parse_hyperparameters(["--note=a\nb"]) == {"note": "a\nb"}


def test_formatted_args_use_bare_flags_for_true_and_words_for_the_rest():
    assert format_args({"amp": True, "fp16": False, "lr": 0.1, "opt": "adam"}) == [
        "--amp",
        "--fp16",
        "false",
        "--lr",
        "0.1",
        "--opt",
        "adam",
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"lr": -0.1, "amp": True, "fp16": False, "epochs": 3},
        {"opt": "adam", "big": 10**30, "tiny": 5e-324},
        {"limit": math.inf},
    ],
)
def test_formatted_args_read_back_to_the_same_dict(params):
    assert parse_hyperparameters(format_args(params)) == params


@pytest.mark.parametrize("value", [-math.inf, "-a", "--", "-", "-x=1"])
def test_values_starting_with_a_dash_round_trip(value):
    assert parse_hyperparameters(format_args({"x": value})) == {"x": value}


KEYS = st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True)


def _looks_like_number_or_bool(text: str) -> bool:
    if text.strip().lower() in ("true", "false"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


PLAIN_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20
).filter(lambda s: not s.startswith("-") and not _looks_like_number_or_bool(s))
VALUES = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    PLAIN_TEXT,
    st.booleans(),
)


@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_any_plain_hyperparameters_survive_format_and_parse(params):
    parsed = parse_hyperparameters(format_args(params))
    assert parsed == params
    assert {k: type(v) for k, v in parsed.items()} == {
        k: float if isinstance(v, float) else type(v) for k, v in params.items()
    }


DASHED_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20
).filter(lambda s: not _looks_like_number_or_bool(s))
ANY_VALUES = st.one_of(st.integers(), st.floats(allow_nan=False), DASHED_TEXT, st.booleans())


@given(st.dictionaries(KEYS, ANY_VALUES, max_size=8))
def test_values_that_look_like_flags_or_infinities_also_survive(params):
    assert parse_hyperparameters(format_args(params)) == params
