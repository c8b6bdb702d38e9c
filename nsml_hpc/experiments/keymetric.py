"""Which metric a table shows when none is configured.

The key metric is the configured one (``key_metric`` in the config), else the first of a short
preference list that the sessions report, else the first name in sorted order. Which way is
better for it is the one direction rule, :mod:`nsml_hpc.job.direction`.
"""

from __future__ import annotations

from collections.abc import Iterable

PREFERRED_KEY_METRICS = (
    "val_loss",
    "valid_loss",
    "validation_loss",
    "eval_loss",
    "test_loss",
    "val_acc",
    "val_accuracy",
    "loss",
    "train_loss",
)


def pick_key_metric(names: Iterable[str], configured: str | None = None) -> str | None:
    """The metric a table keys on: the configured one, a preferred one present, or the first."""
    available = sorted(set(names))
    if configured:
        return configured
    for preferred in PREFERRED_KEY_METRICS:
        if preferred in available:
            return preferred
    return available[0] if available else None
