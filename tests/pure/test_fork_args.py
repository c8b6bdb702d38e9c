"""How a fork changes the parent's command line: values replaced where they stand, switches
set or removed, new flags only on request, and keys a command line cannot hold refused."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from nsml_hpc.errors import SpecError
from nsml_hpc.job.hparams import parse_hyperparameters
from nsml_hpc.snapshots.fork import apply_overrides, parse_assignment, parse_changes, split_changes


def _apply(args: list[str], sets: Sequence[str] = (), adds: Sequence[str] = ()) -> list[str]:
    words, _ = apply_overrides(
        args,
        [parse_assignment("--set", text) for text in sets],
        [parse_assignment("--add", text) for text in adds],
    )
    return words


@pytest.mark.parametrize(
    ("args", "sets", "expected"),
    [
        (["--lr", "0.1", "data/"], ["lr=0.01"], ["--lr", "0.01", "data/"]),
        (["--lr=0.1"], ["lr=0.01"], ["--lr=0.01"]),
        (["--batch-size", "32"], ["batch_size=64"], ["--batch-size", "64"]),
        (["--batch-size", "32"], ["batch-size=64"], ["--batch-size", "64"]),
        (["--shift", "1"], ["shift=-2"], ["--shift", "-2"]),
        (["--mode", "a"], ["mode=-x"], ["--mode=-x"]),
        (["--amp", "--lr", "1"], ["amp=false"], ["--lr", "1"]),
        (["--amp"], ["amp=true"], ["--amp"]),
        (["--lr", "1", "--lr", "2"], ["lr=3"], ["--lr", "3", "--lr", "3"]),
        (["--lr", "1", "--", "--lr", "9"], ["lr=3"], ["--lr", "3", "--", "--lr", "9"]),
        (["--name", "x"], ["name=a b;$(id)"], ["--name", "a b;$(id)"]),
    ],
)
def test_set_replaces_values_where_they_stand(
    args: list[str], sets: list[str], expected: list[str]
) -> None:
    assert _apply(args, sets) == expected


def test_add_appends_before_a_double_dash_and_reads_back() -> None:
    words = _apply(["--lr", "1", "--", "pos"], adds=["warmup=100", "tag=-x"])
    assert words == ["--lr", "1", "--warmup", "100", "--tag=-x", "--", "pos"]
    assert parse_hyperparameters(words) == {"lr": 1, "warmup": 100, "tag": "-x"}


def test_changes_name_old_and_new_values() -> None:
    _, changes = apply_overrides(["--lr", "0.1"], [("lr", "0.01")], [("seed", "3")])
    assert [(c.key, c.old, c.new) for c in changes] == [("lr", "0.1", "0.01"), ("seed", None, "3")]


@pytest.mark.parametrize(
    ("args", "sets", "adds", "message"),
    [
        (["--lr", "1"], ["lrr=2"], [], "no hyperparameter 'lrr'"),
        (["--lr", "1"], ["gpus=2"], [], "use fork --gpus"),
        (["--lr", "1"], [], ["lr=2"], "already has 'lr'"),
        (["--lr", "1"], [], ["time=5"], "is a resource"),
        (["--amp"], ["amp=0.5"], [], "is a switch"),
        (["--lr", "1"], ["lr=1", "lr=2"], [], "given twice"),
    ],
)
def test_keys_that_do_not_fit_are_refused(
    args: list[str], sets: list[str], adds: list[str], message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        _apply(args, sets, adds)


@pytest.mark.parametrize(
    "text",
    ["lr", "=1", "lr rate=1", "--lr=1", "1lr=2", "l\nr=1", "lr=a\x00b", "-x=1", "a/b=1"],
    ids=ascii,
)
def test_assignments_a_command_line_cannot_hold_are_refused(text: str) -> None:
    with pytest.raises(SpecError):
        parse_assignment("--set", text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lr=0.05 epochs=20", {"lr": "0.05", "epochs": "20"}),
        ("--lr 0.05 --epochs=20", {"lr": "0.05", "epochs": "20"}),
        ("--amp", {"amp": "true"}),
        ("--amp --lr 1", {"amp": "true", "lr": "1"}),
        ("--shift -3", {"shift": "-3"}),
        ('name="a b"', {"name": "a b"}),
        ("", {}),
    ],
)
def test_the_fork_forms_changes_are_read_as_names_and_values(
    text: str, expected: dict[str, str]
) -> None:
    assert parse_changes(text) == expected


@pytest.mark.parametrize("text", ["lr", "3=4", '"unclosed', "--=x", "a;b=1 c", "-3=1"])
def test_fork_form_changes_that_are_not_name_value_are_refused(text: str) -> None:
    with pytest.raises(SpecError):
        parse_changes(text)


def test_fork_form_changes_set_the_parents_names_and_add_new_ones() -> None:
    sets, adds = split_changes(["lr", "batch_size"], {"lr": "0.3", "batch-size": "8", "seed": "1"})
    assert sets == ["lr=0.3", "batch-size=8"]
    assert adds == ["seed=1"]
    words = _apply(["--lr", "0.1", "--batch-size=4"], sets, adds)
    assert words == ["--lr", "0.3", "--batch-size=8", "--seed", "1"]
