"""Hyperparameter sweeps: parse ``--grid``/``--range``/``--choice`` and expand them into
configurations (pure; the submission lives in :mod:`nsml_hpc.sweeps.submit`).

    --grid lr=0.1,0.01 --grid bs=32,64          4 configurations (the cartesian product)
    --random 8 --range lr=1e-4:1e-1:log --choice opt=adam,sgd
                                                8 random draws (times the grid, if any)
"""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass
from typing import Literal

from nsml_hpc.errors import SpecError
from nsml_hpc.job.text import has_control_characters

Scale = Literal["linear", "log", "int"]
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
MAX_CONFIGURATIONS = 100_000


@dataclass(frozen=True)
class Grid:
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Range:
    name: str
    low: float
    high: float
    scale: Scale = "linear"

    def draw(self, rng: random.Random) -> str:
        if self.scale == "log":
            return _short(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        if self.scale == "int":
            return str(rng.randint(int(self.low), int(self.high)))
        return _short(rng.uniform(self.low, self.high))


def _short(value: float) -> str:
    return f"{value:.6g}"


def _split_assignment(flag: str, text: str) -> tuple[str, str]:
    name, sep, rest = text.partition("=")
    if not sep or not NAME.fullmatch(name):
        raise SpecError(f"{flag} takes NAME=VALUES (e.g. {flag} lr=0.1,0.01), got {text!r}")
    if has_control_characters(rest):
        raise SpecError(f"{flag} {name}: values cannot contain control characters")
    return name, rest


def _values(flag: str, name: str, text: str) -> tuple[str, ...]:
    values = tuple(part.strip() for part in text.split(","))
    if not text.strip() or any(not value for value in values):
        raise SpecError(f"{flag} {name}: empty value in {text!r}")
    duplicates = sorted({value for value in values if values.count(value) > 1})
    if duplicates:
        raise SpecError(f"{flag} {name}: duplicated value(s) {', '.join(duplicates)}")
    return values


def parse_grid(text: str, flag: str = "--grid") -> Grid:
    name, rest = _split_assignment(flag, text)
    return Grid(name, _values(flag, name, rest))


def parse_range(text: str) -> Range:
    """``lr=1e-4:1e-1:log`` (scales: linear (default), log, int)."""
    name, rest = _split_assignment("--range", text)
    parts = rest.split(":")
    if len(parts) not in (2, 3):
        raise SpecError(f"--range {name} takes MIN:MAX[:linear|log|int], got {rest!r}")
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise SpecError(f"--range {name}: MIN and MAX must be numbers, got {rest!r}") from None
    scale = parts[2] if len(parts) == 3 else "linear"
    if scale not in ("linear", "log", "int"):
        raise SpecError(f"--range {name}: unknown scale {scale!r} (linear, log, int)")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SpecError(f"--range {name}: MIN and MAX must be finite")
    if low > high:
        raise SpecError(f"--range {name}: MIN {parts[0]} is greater than MAX {parts[1]}")
    if scale == "log" and low <= 0:
        raise SpecError(f"--range {name}: a log range must stay above zero, got MIN {parts[0]}")
    if scale == "int" and (low != int(low) or high != int(high)):
        raise SpecError(f"--range {name}: an int range needs whole MIN and MAX")
    return Range(name, low, high, scale)  # type: ignore[arg-type]


def expand(
    grids: list[Grid],
    *,
    random_count: int | None = None,
    ranges: list[Range] | None = None,
    choices: list[Grid] | None = None,
    seed: int = 0,
) -> list[dict[str, str]]:
    """Every configuration of the sweep, in a stable order."""
    ranges, choices = ranges or [], choices or []
    names = [g.name for g in grids] + [r.name for r in ranges] + [c.name for c in choices]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise SpecError(f"hyperparameter(s) given twice in the sweep: {', '.join(repeated)}")
    if random_count is None and (ranges or choices):
        raise SpecError("--range and --choice need --random N (how many draws)")
    if random_count is not None and not (ranges or choices):
        raise SpecError("--random needs at least one --range or --choice to draw from")
    if random_count is not None and random_count < 1:
        raise SpecError("--random must be at least 1")
    if not names:
        raise SpecError("a sweep needs at least one --grid, or --random with --range/--choice")
    grid_points = [
        dict(zip([g.name for g in grids], combo, strict=True))
        for combo in itertools.product(*(g.values for g in grids))
    ]
    total = len(grid_points) * (random_count or 1)
    if total > MAX_CONFIGURATIONS:
        raise SpecError(f"the sweep has {total} configurations; the limit is {MAX_CONFIGURATIONS}")
    if random_count is None:
        return grid_points
    rng = random.Random(seed)  # noqa: S311 - reproducible draws, not secrets
    configurations: list[dict[str, str]] = []
    for point in grid_points:
        for _ in range(random_count):
            draw = dict(point)
            for item in ranges:
                draw[item.name] = item.draw(rng)
            for choice in choices:
                draw[choice.name] = rng.choice(choice.values)
            configurations.append(draw)
    return configurations


def apply_to_args(args: list[str], configuration: dict[str, str]) -> list[str]:
    """``args`` with each ``--name`` set to the configuration's value (replaced where the
    script's arguments already give it, appended otherwise)."""
    result = list(args)
    for name, value in configuration.items():
        flag = f"--{name}"
        for index, word in enumerate(result):
            if word == flag and index + 1 < len(result):
                result[index + 1] = value
                break
            if word.startswith(flag + "="):
                result[index] = f"{flag}={value}"
                break
        else:
            result.append(f"{flag}={value}" if value.startswith("-") else flag)
            if not value.startswith("-"):
                result.append(value)
    return result
