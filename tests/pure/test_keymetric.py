"""Which way is better for a metric, and the default key metric."""

from __future__ import annotations

import pytest

from nsml_hpc.experiments.keymetric import best_of, metric_goal, pick_key_metric


@pytest.mark.parametrize(
    ("name", "goal"),
    [
        ("val_loss", "min"),
        ("loss", "min"),
        ("train/loss", "min"),
        ("test-error", "min"),
        ("perplexity", "min"),
        ("val_acc", "max"),
        ("accuracy", "max"),
        ("f1", "max"),
        ("reward", "max"),
        ("glossary_size", "max"),  # words, not substrings
    ],
)
def test_metric_goal(name: str, goal: str) -> None:
    assert metric_goal(name) == goal


def test_best_of_follows_the_goal() -> None:
    assert best_of("val_loss", 0.1, 0.9) == 0.1
    assert best_of("val_acc", 0.1, 0.9) == 0.9


def test_pick_key_metric_prefers_config_then_validation_loss_then_first() -> None:
    assert pick_key_metric(["acc", "val_loss"], "acc") == "acc"
    assert pick_key_metric(["train_loss", "val_loss", "val_acc"]) == "val_loss"
    assert pick_key_metric(["zeta", "alpha"]) == "alpha"
    assert pick_key_metric([]) is None
