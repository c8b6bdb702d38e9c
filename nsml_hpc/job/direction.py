"""Which way is better for a metric: ONE rule for everything that ranks. ``load("best:M")``,
``fork --snapshot best:M``, gc's keep-best, the leaderboard, compare, ``ps`` and the TUI all
ask :meth:`Directions.goal`. Standard library only (the in-job ``load`` uses it).

The rule, first match wins:

1. **An override for the exact name**: ``[metrics]`` in the config file
   (``fid = "min"``, ``"val/score" = "max"``), or ``best:M:min|max`` / ``M:min|max`` where a
   metric is named.
2. **The words of the name.** A name is cut into words at anything that is not a letter or a
   digit (``val/fid``, ``train_loss``, ``test-error``), at camelCase humps (``valLoss``,
   ``MSELoss``; an all-capital run such as ``mAP`` stays one word) and after a glued-on
   split prefix (``valloss``: val + loss). Words match whole, never as substrings:
   ``lossy_acc`` has no ``loss`` in it, ``answer_acc`` no ``wer``. Trailing digits are
   ignored (``bleu4``, ``map50``, ``rouge1``). Words named in ``[metrics]`` are looked at
   before the built-in ones (``fid = "max"`` makes ``val/fid`` max too).
3. **The tie rule: lower-is-better wins.** If any word says lower is better (``loss``,
   ``error``, ``fid``, ...), the name is ``"min"`` even when a higher-is-better word is in it
   as well: ``fid_score``, ``iou_loss``, ``dice_loss``, ``acc_error`` and ``time_to_acc``
   are all minimised. Otherwise a higher-is-better word (``acc``, ``f1``, ``bleu``, ...)
   makes it ``"max"``.
4. **A leading ``neg``/``negative`` flips a direction found by words**, as scikit-learn
   spells scores: ``neg_mean_squared_error`` and ``neg_log_loss`` are maximised,
   ``negative_log_likelihood`` is minimised.
5. **A name with no known word is maximised** (``throughput``, ``samples_per_sec``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

Goal = Literal["min", "max"]
GOALS: tuple[Goal, ...] = ("min", "max")
UNKNOWN_GOAL: Goal = "max"
DOCUMENT_KEY = "metric_directions"  # the overrides in session.json: {"fid": "min", ...}

LOWER_IS_BETTER = frozenset(
    {
        # losses and errors
        "loss",
        "losses",
        "error",
        "errors",
        "err",
        "nll",
        "kl",
        "divergence",
        "regret",
        "cost",
        "penalty",
        "distance",
        "dist",
        # regression errors
        "mae",
        "mse",
        "rmse",
        "msle",
        "mape",
        # language and speech
        "perplexity",
        "ppl",
        "wer",
        "cer",
        "ter",
        "bpd",
        "bpc",
        "bpb",
        # generative image quality (distances between distributions)
        "fid",
        "kid",
        "lpips",
        # calibration, verification
        "ece",
        "eer",
        # time
        "time",
        "latency",
        "duration",
    }
)
HIGHER_IS_BETTER = frozenset(
    {
        # classification
        "acc",
        "accuracy",
        "f1",
        "fscore",
        "auc",
        "auroc",
        "auprc",
        "precision",
        "prec",
        "recall",
        "kappa",
        "mcc",
        # detection, segmentation, retrieval
        "ap",
        "map",
        "iou",
        "miou",
        "dice",
        "ndcg",
        "mrr",
        "hit",
        "hits",
        # text generation
        "bleu",
        "rouge",
        "rougel",
        "rougelsum",
        "meteor",
        "chrf",
        "cider",
        "em",
        # images
        "psnr",
        "ssim",
        # regression and statistics
        "r2",
        "corr",
        "correlation",
        "pearson",
        "spearman",
        "likelihood",
        "elbo",
        # reinforcement learning
        "reward",
        "rewards",
        "return",
        "returns",
        "success",
        # generic
        "score",
        "throughput",
    }
)
SPLIT_PREFIXES = ("validation", "training", "valid", "train", "test", "eval", "val", "dev")
NEGATIONS = frozenset({"neg", "negative"})
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z][a-z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATOR = re.compile(r"[^A-Za-z0-9]+")
_BUILT_IN: dict[str, Goal] = {
    **{word: "max" for word in HIGHER_IS_BETTER},
    **{word: "min" for word in LOWER_IS_BETTER},
}


def parse_goal(text: object) -> Goal | None:
    """``"min"`` or ``"max"`` (as written); ``None`` for anything else."""
    if text == "min":
        return "min"
    if text == "max":
        return "max"
    return None


def split_goal(text: str) -> tuple[str, Goal | None]:
    """``"val_acc:max"`` -> ``("val_acc", "max")``; a name without ``:min``/``:max`` stays
    whole (``"val_acc"`` -> ``("val_acc", None)``)."""
    name, sep, suffix = text.rpartition(":")
    goal = parse_goal(suffix)
    if sep and name and goal is not None:
        return name, goal
    return text, None


@lru_cache(maxsize=4096)
def words(name: str) -> tuple[str, ...]:
    """The lowercase words of a metric name (see the module docstring)."""
    return tuple(word.lower() for word in _SEPARATOR.split(_HUMP.sub("_", name)) if word)


def _candidates(word: str) -> Iterable[str]:
    """``word`` as written, without trailing digits, and without a glued-on split prefix."""
    yield word
    bare = word.rstrip("0123456789")
    if bare and bare != word:
        yield bare
    for prefix in SPLIT_PREFIXES:
        if word.startswith(prefix) and len(word) > len(prefix):
            rest = word[len(prefix) :]
            yield rest
            stripped = rest.rstrip("0123456789")
            if stripped and stripped != rest:
                yield stripped
            break


def _by_words(parts: tuple[str, ...], table: Mapping[str, Goal]) -> Goal | None:
    """min if any word is a min word, else max if any is a max word, else None."""
    found: set[Goal] = set()
    for word in parts:
        for candidate in _candidates(word):
            goal = table.get(candidate)
            if goal is not None:
                found.add(goal)
                break
    if "min" in found:
        return "min"
    return "max" if found else None


def _flip(goal: Goal) -> Goal:
    return "max" if goal == "min" else "min"


@dataclass(frozen=True)
class Directions:
    """The rule with the user's overrides (``[metrics]``). Immutable and hashable: it travels
    in queries, settings and the session document."""

    overrides: tuple[tuple[str, Goal], ...] = ()

    @classmethod
    def of(cls, goals: Mapping[str, Goal]) -> Directions:
        return cls(tuple(sorted(goals.items())))

    @classmethod
    def from_document(cls, document: Mapping[str, object]) -> Directions:
        """The overrides a session document carries (entries that are not ``NAME: min|max``
        are ignored: the document was checked when it was written)."""
        table = document.get(DOCUMENT_KEY)
        if not isinstance(table, dict):
            return NO_OVERRIDES
        goals = {name: parse_goal(value) for name, value in table.items()}
        return cls.of({str(name): goal for name, goal in goals.items() if goal is not None})

    def to_document(self) -> dict[str, dict[str, Goal]]:
        """``{DOCUMENT_KEY: overrides}`` for session.json; empty without overrides."""
        return {DOCUMENT_KEY: self.as_dict()} if self.overrides else {}

    def as_dict(self) -> dict[str, Goal]:
        return dict(self.overrides)

    def goal(self, name: str) -> Goal:
        """``"min"`` or ``"max"`` for metric ``name`` (the rule in the module docstring)."""
        overrides = dict(self.overrides)
        exact = overrides.get(name)
        if exact is not None:
            return exact
        parts = words(name)
        goal = None
        if overrides:
            goal = _by_words(parts, {key.lower(): value for key, value in self.overrides})
        if goal is None:
            goal = _by_words(parts, _BUILT_IN)
        if goal is None:
            return UNKNOWN_GOAL
        return _flip(goal) if parts[0] in NEGATIONS else goal

    def maximize(self, name: str) -> bool:
        return self.goal(name) == "max"


NO_OVERRIDES = Directions()
