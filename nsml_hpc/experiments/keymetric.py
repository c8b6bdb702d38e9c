"""Which way is better for a metric, and which metric a table shows when none is configured.

``val_loss`` is better low, ``val_acc`` high: the direction is read from the words of the
name. The key metric is the configured one (``key_metric`` in the config), else the first of
a short preference list that the sessions report, else the first name in sorted order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

Goal = Literal["min", "max"]

_LOWER_IS_BETTER = frozenset(
    {
        "loss",
        "error",
        "err",
        "perplexity",
        "ppl",
        "wer",
        "cer",
        "mse",
        "mae",
        "rmse",
        "nll",
        "bpd",
        "fid",
        "regret",
        "latency",
        "distance",
        "cost",
    }
)
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


def metric_goal(name: str) -> Goal:
    """``"min"`` when a word of the name says lower is better (loss, error, ...), else ``"max"``."""
    words = [word for word in re.split(r"[^a-z0-9]+", name.lower()) if word]
    return "min" if any(word in _LOWER_IS_BETTER for word in words) else "max"


def best_of(name: str, low: float | None, high: float | None) -> float | None:
    return low if metric_goal(name) == "min" else high


def pick_key_metric(names: Iterable[str], configured: str | None = None) -> str | None:
    """The metric a table keys on: the configured one, a preferred one present, or the first."""
    available = sorted(set(names))
    if configured:
        return configured
    for preferred in PREFERRED_KEY_METRICS:
        if preferred in available:
            return preferred
    return available[0] if available else None
