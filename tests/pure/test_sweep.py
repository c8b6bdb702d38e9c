"""Sweep expansion: grids, random draws over ranges and choices, and what bad specs get."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsml_hpc.errors import SpecError
from nsml_hpc.job.hparams import parse_hyperparameters
from nsml_hpc.sweeps.grid import apply_to_args, expand, parse_grid, parse_range


def test_two_grids_expand_to_their_cartesian_product() -> None:
    configurations = expand([parse_grid("lr=0.1,0.01"), parse_grid("bs=32,64")])
    assert configurations == [
        {"lr": "0.1", "bs": "32"},
        {"lr": "0.1", "bs": "64"},
        {"lr": "0.01", "bs": "32"},
        {"lr": "0.01", "bs": "64"},
    ]


def test_random_draws_stay_inside_their_ranges_and_are_reproducible() -> None:
    ranges = [parse_range("lr=1e-4:1e-1:log"), parse_range("layers=2:5:int")]
    choices = [parse_grid("opt=adam,sgd", flag="--choice")]
    first = expand([], random_count=50, ranges=ranges, choices=choices, seed=7)
    again = expand([], random_count=50, ranges=ranges, choices=choices, seed=7)
    assert first == again and len(first) == 50
    for draw in first:
        assert 1e-4 <= float(draw["lr"]) <= 1e-1
        assert draw["layers"] in {"2", "3", "4", "5"}
        assert draw["opt"] in {"adam", "sgd"}
    assert len({draw["lr"] for draw in first}) > 40


def test_random_draws_combine_with_a_grid() -> None:
    configurations = expand(
        [parse_grid("bs=32,64")], random_count=3, ranges=[parse_range("lr=0:1")], seed=1
    )
    assert [c["bs"] for c in configurations] == ["32"] * 3 + ["64"] * 3


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: parse_grid("lr="), "empty value"),
        (lambda: parse_grid("lr=0.1,,0.2"), "empty value"),
        (lambda: parse_grid("lr=0.1,0.1"), "duplicated value"),
        (lambda: parse_grid("0.1,0.2"), "NAME=VALUES"),
        (lambda: parse_grid("l r=1"), "NAME=VALUES"),
        (lambda: parse_range("lr=1:0"), "greater than MAX"),
        (lambda: parse_range("lr=0:1:log"), "above zero"),
        (lambda: parse_range("lr=-1:1:log"), "above zero"),
        (lambda: parse_range("lr=a:b"), "must be numbers"),
        (lambda: parse_range("lr=1:2:cubic"), "unknown scale"),
        (lambda: parse_range("lr=1"), "MIN:MAX"),
        (lambda: parse_range("n=1.5:3:int"), "whole"),
        (lambda: expand([], random_count=3), "--random needs"),
        (lambda: expand([], ranges=[parse_range("lr=0:1")]), "need --random"),
        (
            lambda: expand([parse_grid("a=1")], random_count=0, ranges=[parse_range("b=0:1")]),
            "at least 1",
        ),
        (lambda: expand([parse_grid("a=1"), parse_grid("a=2")]), "given twice"),
        (lambda: expand([]), "at least one"),
    ],
)
def test_bad_sweep_specs_are_one_clear_error(build: Callable[[], object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        build()


def test_apply_to_args_replaces_given_flags_and_appends_the_rest() -> None:
    args = ["--lr", "0.5", "--epochs=3", "data/"]
    result = apply_to_args(args, {"lr": "0.01", "epochs": "9", "bs": "64", "shift": "-1"})
    assert result == ["--lr", "0.01", "--epochs=9", "data/", "--bs", "64", "--shift=-1"]
    assert parse_hyperparameters(result) == {"lr": 0.01, "epochs": 9, "bs": 64, "shift": -1}


@given(st.floats(min_value=1e-8, max_value=1e3), st.floats(min_value=1.0, max_value=1e4))
def test_log_draws_never_leave_the_range(low: float, factor: float) -> None:
    high = low * factor
    rng_range = parse_range(f"x={low!r}:{high!r}:log")
    for draw in expand([], random_count=20, ranges=[rng_range], seed=3):
        value = float(draw["x"])
        assert low * (1 - 1e-5) <= value <= high * (1 + 1e-5)
        assert math.isfinite(value)
