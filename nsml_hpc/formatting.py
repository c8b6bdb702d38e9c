"""Plain-text tables and numbers for the terminal (no dependencies).

Everything here writes for a terminal, so every piece of text from the catalog goes through
:func:`printable` (control characters shown as escapes; see :mod:`nsml_hpc.job.text`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from nsml_hpc.job.text import printable


def format_number(value: float | None) -> str:
    if value is None:
        return "nan"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.4g}"


def format_metrics(metrics: dict[str, float | None], width: int = 72) -> str:
    text = " ".join(
        f"{printable(name)}={format_number(value)}" for name, value in sorted(metrics.items())
    )
    return text if len(text) <= width else text[: width - 1] + "…"


def format_bytes(size: int) -> str:
    """A size for people: ``512 B``, ``1.5 KiB`` ... ``2.0 TiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def format_time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; every cell is made printable (one line, no control sequence)."""
    headers = [printable(header) for header in headers]
    rows = [[printable(cell) for cell in row] for row in rows]
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


def printable_tree(value: Any) -> Any:
    """``value`` (JSON-like data: dicts, lists, strings) with every string, keys included,
    made printable: what a terminal may be shown of a session's details."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_tree(key): printable_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [printable_tree(item) for item in value]
    return value


__all__ = [
    "format_metrics",
    "format_number",
    "format_time",
    "printable",
    "printable_tree",
    "session_sort_key",
    "sorted_sessions",
    "table",
]
