"""Metrics a training script only prints (``print(f"epoch {e} step {s} loss={l:.4f}")``),
read from its Slurm output file from where the last sync stopped (pure: bytes in, points out).

A line counts when it names its x axis -- ``step``, ``global_step``, ``iter``/``iteration``
or ``epoch`` followed by a whole number (``step 100``, ``step=100``, ``Step: 100/500``);
``step`` wins over ``epoch``, which is then a metric too. Its metrics are the ``name=value``
and ``name: value`` pairs whose value is a number (``nan``/``inf`` are gaps; ``98.5%`` is 98.5;
``tensor(0.25, ...)`` is 0.25). Lines without an x axis (arguments, warnings, tracebacks) are
not metrics. With a pattern (``--stdout-pattern``), its named groups are read instead.

Progress bars redraw a line with carriage returns: only what a terminal would show last (the
text after the last ``\\r``) is read, ANSI escapes are dropped, and a bar that never ends its
line is skipped over rather than read again at every sync. A line whose ``name=value`` pairs
hold no number at all (``loss=abc``) is counted as malformed and named, never fatal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

MAX_LINE_CHARS = 4096
MAX_PROBLEMS = 5
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_X_AXIS = re.compile(
    r"(?<![A-Za-z0-9_])(?P<key>global_step|step|iteration|iter|epoch)\s*[:=]?\s*"
    r"(?P<number>\d+)(?:\s*/\s*\d+)?(?![\w.])",
    re.IGNORECASE,
)
_PAIR = re.compile(
    r"(?<![\w./-])(?P<name>[A-Za-z_][\w./-]*?)\s*(?P<sep>=|:)\s*(?P<value>[^\s,;|\]})]+(?:\))?)"
)
_NUMBER = re.compile(
    r"^(?:tensor\()?(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf))"
    r"(?:%|,.*|\))?$",
    re.IGNORECASE,
)
X_KEYS = frozenset({"step", "global_step", "iter", "iteration", "epoch"})

PointRow = tuple[int | None, float | None, str, float | None]


@dataclass
class StdoutPoints:
    points: list[PointRow] = field(default_factory=list)
    lines: int = 0  # complete lines read
    malformed: int = 0  # lines that looked like metrics, with no number in them
    problems: list[str] = field(default_factory=list)  # the first few, with line numbers


def usable_chunk(raw: bytes, offset: int) -> tuple[bytes, int]:
    """The complete lines of ``raw`` (read at ``offset``) and the offset after them; with no
    newline at all, everything up to the last carriage return is skipped (a progress bar
    redrawing one line for a whole epoch is never read twice)."""
    end = raw.rfind(b"\n")
    if end >= 0:
        return raw[: end + 1], offset + end + 1
    redraw = raw.rfind(b"\r")
    return b"", offset + redraw + 1 if redraw >= 0 else offset


def visible_text(raw: bytes) -> str:
    """What a terminal would show of one output line: ANSI escapes removed, the text after
    the last carriage return (or the last non-empty part before it)."""
    text = _ANSI.sub("", raw.decode("utf-8", errors="replace"))
    parts = [part for part in text.split("\r") if part.strip()]
    return parts[-1].strip() if parts else ""


def number(text: str) -> float | bool | None:
    """A printed value as a metric: a float, None for nan/inf, False if it is no number."""
    match = _NUMBER.match(text)
    if match is None:
        return False
    try:
        value = float(match.group("number"))
    except ValueError:
        return False
    return value if math.isfinite(value) else None


def _x_axis(text: str) -> tuple[int | None, float | None]:
    """(step, epoch) named in a line."""
    step: int | None = None
    epoch: int | None = None
    for match in _X_AXIS.finditer(text):
        key, value = match.group("key").lower(), int(match.group("number"))
        if key == "epoch":
            epoch = value if epoch is None else epoch
        elif step is None:
            step = value
    return step, float(epoch) if epoch is not None else None


def _default_line(text: str) -> tuple[int | None, dict[str, float | None], list[str]] | None:
    """(x, metrics, values that are not numbers) of one line; None if it names no x axis."""
    step, epoch = _x_axis(text)
    if step is None and epoch is None:
        return None
    x = step if step is not None else int(epoch or 0)
    metrics: dict[str, float | None] = {}
    refused: list[str] = []
    for match in _PAIR.finditer(text):
        name, value = match.group("name"), match.group("value")
        if name.lower() in X_KEYS:
            continue
        parsed = number(value)
        if parsed is False:
            if match.group("sep") == "=":
                refused.append(f"{name}={value}")
            continue
        metrics[name] = parsed if isinstance(parsed, float) else None
    if step is not None and epoch is not None and (metrics or not refused):
        metrics["epoch"] = epoch
    return x, metrics, refused


def _pattern_line(
    text: str, pattern: re.Pattern[str]
) -> tuple[int | None, dict[str, float | None], list[str]] | None:
    match = pattern.search(text)
    if match is None:
        return None
    groups = match.groupdict()
    x: int | None = None
    for key in ("step", "epoch"):
        value = groups.get(key)
        if x is None and value is not None and value.strip().isdigit():
            x = int(value.strip())
    metrics: dict[str, float | None] = {}
    refused: list[str] = []
    for name, value in groups.items():
        if name in ("step", "epoch") or value is None:
            continue
        parsed = number(value.strip())
        if parsed is False:
            refused.append(f"{name}={value}")
            continue
        metrics[name] = parsed if isinstance(parsed, float) else None
    if "epoch" in groups and x is not None and groups.get("step") is not None:
        epoch = groups.get("epoch")
        if epoch is not None and epoch.strip().isdigit():
            metrics["epoch"] = float(epoch)
    return x, metrics, refused


def parse_stdout(
    chunk: bytes,
    first_line: int,
    *,
    pattern: re.Pattern[str] | None = None,
    skip: frozenset[str] | set[str] = frozenset(),
    label: str = "output",
) -> StdoutPoints:
    """Points from complete lines of a Slurm output file (``first_line``: the number of the
    chunk's first line in the file, for messages). Metrics named in ``skip`` arrive through
    ``report()`` or a captured file and are left out, never counted twice."""
    result = StdoutPoints()
    lines = chunk.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    result.lines = len(lines)
    for number_in_file, raw in enumerate(lines, first_line + 1):
        if len(raw) > MAX_LINE_CHARS * 4:
            raw = raw[-MAX_LINE_CHARS * 4 :]  # a long redraw run: only its end can be shown
        text = visible_text(raw)
        if not text or len(text) > MAX_LINE_CHARS:
            continue
        parsed = _pattern_line(text, pattern) if pattern is not None else _default_line(text)
        if parsed is None:
            continue
        x, metrics, refused = parsed
        if refused and not metrics:
            result.malformed += 1
            if len(result.problems) < MAX_PROBLEMS:
                result.problems.append(
                    f"{label} line {number_in_file}: {refused[0]!s} is not a number"
                )
            continue
        for name, value in metrics.items():
            if name not in skip:
                result.points.append((x, None, name, value))
    return result


__all__ = ["StdoutPoints", "number", "parse_stdout", "usable_chunk", "visible_text"]
