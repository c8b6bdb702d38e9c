""" "Did you mean": the closest of the names a user could have meant (standard library only).

One helper for every name a user types: sessions, metrics, commands and options, cluster and
config keys, ``ps`` columns. Suggestions only ever decorate an error; the command still fails
(non-zero exit), it never runs with a guessed name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.6


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` of ``candidates`` closest to ``word`` (case-insensitive), best first."""
    pool = sorted(set(candidates))
    lowered: dict[str, str] = {}
    for name in pool:
        lowered.setdefault(name.lower(), name)
    found = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=CUTOFF)
    return [lowered[item] for item in found]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)``, `` (did you mean 'x' or 'y'?)``, or ``""``."""
    found = close_matches(word, candidates, n=2)
    if not found:
        return ""
    return " (did you mean " + " or ".join(repr(item) for item in found) + "?)"


__all__ = ["close_matches", "did_you_mean"]
