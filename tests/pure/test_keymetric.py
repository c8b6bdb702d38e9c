"""The default key metric of a table."""

from __future__ import annotations

from nsml_hpc.experiments.keymetric import pick_key_metric


def test_pick_key_metric_prefers_config_then_validation_loss_then_first() -> None:
    assert pick_key_metric(["acc", "val_loss"], "acc") == "acc"
    assert pick_key_metric(["train_loss", "val_loss", "val_acc"]) == "val_loss"
    assert pick_key_metric(["zeta", "alpha"]) == "alpha"
    assert pick_key_metric([]) is None
