"""Plain-text tables and numbers for the terminal (no dependencies)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence


def format_number(value: float | None) -> str:
    if value is None:
        return "nan"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.4g}"


def format_metrics(metrics: dict[str, float | None], width: int = 72) -> str:
    text = " ".join(f"{name}={format_number(value)}" for name, value in sorted(metrics.items()))
    return text if len(text) <= width else text[: width - 1] + "…"


def format_time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def session_sort_key(name: str) -> tuple[str, int, str]:
    """Sessions in the order people count them: ``proj/2`` before ``proj/10`` (by project,
    then number); a name that is not ``PROJECT/N`` sorts after its project's numbers."""
    project, _, number = name.rpartition("/")
    if number.isdigit():
        return (project, int(number), "")
    return (project or name, 1 << 62, name)


def sorted_sessions(names: Iterable[str]) -> list[str]:
    """``names`` sorted by :func:`session_sort_key`."""
    return sorted(names, key=session_sort_key)
