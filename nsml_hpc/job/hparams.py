"""Hyperparameters read from a training script's command line.

``train.py --lr 0.1 --epochs=3 --amp data/`` holds ``{"lr": 0.1, "epochs": 3, "amp": True}``.
The argument list itself is what the script receives, byte for byte; this dict is only how
nsml-hpc shows, compares and forks sessions. Stdlib only: the in-job API uses it too.
"""

from __future__ import annotations

import re

HParamValue = int | float | bool | str

_FLAG = re.compile(r"^--?([A-Za-z_][A-Za-z0-9_.-]*)(?:=(.*))?$", re.DOTALL)
_NUMBER_LIKE = re.compile(r"^-?([0-9]|\.[0-9])")
_INTEGER = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


def coerce(text: str) -> HParamValue:
    """The typed value of one command-line word: int, float, bool or the text itself."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INTEGER.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text) or lowered in ("inf", "-inf", "nan"):
        return float(text)
    return text


def _is_value(word: str) -> bool:
    """A word after ``--name`` is its value unless it is a flag (negative numbers are values)."""
    return not word.startswith("-") or bool(_NUMBER_LIKE.match(word))


def parse_hyperparameters(args: list[str]) -> dict[str, HParamValue]:
    """The ``--name value``, ``--name=value`` and ``--flag`` pairs (positionals skipped)."""
    found: dict[str, HParamValue] = {}
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word == "--":
            break
        match = _FLAG.match(word)
        if match is None:
            continue
        name = match.group(1).replace("-", "_")
        if match.group(2) is not None:
            found[name] = coerce(match.group(2))
        elif index < len(args) and _is_value(args[index]):
            found[name] = coerce(args[index])
            index += 1
        else:
            found[name] = True
    return found


def format_args(hyperparameters: dict[str, HParamValue]) -> list[str]:
    """Command-line words that ``parse_hyperparameters`` reads back as ``hyperparameters``."""
    words: list[str] = []
    for name, value in hyperparameters.items():
        if value is True:
            words.append(f"--{name}")
        elif value is False:
            words.extend([f"--{name}", "false"])
        elif str(value).startswith("-"):
            words.append(f"--{name}={value}")  # '-a' as its own word would read as a flag
        else:
            words.extend([f"--{name}", str(value)])
    return words
