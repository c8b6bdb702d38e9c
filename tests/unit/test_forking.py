"""A fork's spec: the parent's arguments with changed values, GPUs, snapshot."""

from __future__ import annotations

import pytest

from nsml_hpc.errors import SpecError
from nsml_hpc.forking import fork_spec, override_args, parse_overrides
from nsml_hpc.hparams import parse_hyperparameters
from nsml_hpc.spec import Resources, SessionSpec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lr=0.05 epochs=20", {"lr": "0.05", "epochs": "20"}),
        ("--lr 0.05 --epochs=20", {"lr": "0.05", "epochs": "20"}),
        ("--amp", {"amp": "true"}),
        ("--shift -3", {"shift": "-3"}),
        ('name="a b"', {"name": "a b"}),
        ("", {}),
    ],
)
def test_parse_overrides(text: str, expected: dict[str, str]) -> None:
    assert parse_overrides(text) == expected


@pytest.mark.parametrize("text", ["lr", "3=4", '"unclosed', "--=x", "a;b=1 c"])
def test_bad_overrides_are_refused(text: str) -> None:
    with pytest.raises(SpecError):
        parse_overrides(text)


def test_override_args_keeps_order_positionals_and_forms() -> None:
    args = ["data/", "--lr", "0.1", "--batch-size=64", "--amp", "--", "--lr", "9"]
    out = override_args(args, {"lr": "0.05", "batch_size": "128", "seed": "7"})
    assert out == [
        "data/",
        "--lr",
        "0.05",
        "--batch-size=128",
        "--amp",
        "--",
        "--lr",
        "9",
        "--seed",
        "7",
    ]


def test_override_args_handles_switches_and_negative_values() -> None:
    assert override_args(["--amp"], {"amp": "false"}) == ["--amp", "false"]
    assert override_args(["--amp"], {"amp": "true"}) == ["--amp"]
    assert override_args(["--shift", "1"], {"shift": "-2"}) == ["--shift=-2"]
    assert parse_hyperparameters(override_args(["--shift", "1"], {"shift": "-2"})) == {"shift": -2}


def test_fork_spec_changes_only_what_was_asked() -> None:
    parent = SessionSpec(
        project="mnist",
        script="train.py",
        args=["--lr", "0.1"],
        resources=Resources(gpus=2, cpus_per_gpu=4, time="1:00:00"),
        memo="baseline",
    )
    child = fork_spec(
        parent, changes={"lr": "0.2"}, gpus=4, resume_from="/runs/a/mnist/1/snapshots/x"
    )
    assert child.args == ["--lr", "0.2"]
    assert (child.resources.gpus, child.resources.cpus_per_gpu, child.resources.time) == (
        4,
        4,
        "1:00:00",
    )
    assert child.memo == "baseline" and child.resume_from == "/runs/a/mnist/1/snapshots/x"
    cpu_only = fork_spec(parent, gpus=0)
    assert cpu_only.resources.cpus_per_gpu is None
    with pytest.raises(SpecError):
        fork_spec(parent, gpus=-1)
