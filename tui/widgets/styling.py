"""How states and numbers look in every screen (one place, so the screens agree)."""

from __future__ import annotations

from nsml_hpc.formatting import format_number

STATE_STYLES = {
    "RUNNING": "bold green",
    "PENDING": "yellow",
    "SUBMITTED": "cyan",
    "REQUEUED": "yellow",
    "SUSPENDED": "yellow",
    "PREEMPTED": "magenta",
    "COMPLETED": "blue",
    "CANCELLED": "magenta",
    "FAILED": "bold red",
    "TIMEOUT": "red",
    "OUT_OF_MEMORY": "red",
    "NODE_FAIL": "red",
    "BOOT_FAIL": "red",
    "DEADLINE": "red",
    "LOST": "red",
}
STATE_ICONS = {
    "RUNNING": "▶",
    "PENDING": "…",
    "SUBMITTED": "↑",
    "COMPLETED": "✔",
    "FAILED": "✘",
    "CANCELLED": "■",
    "TIMEOUT": "⧗",
    "LOST": "?",
}


def state_style(state: str) -> str:
    return STATE_STYLES.get(state, "")


def state_icon(state: str) -> str:
    return STATE_ICONS.get(state, "•")


def metric_text(value: float | None) -> str:
    """A metric value for a narrow column: ``-`` when unknown."""
    return "-" if value is None else format_number(value)


def ago_text(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{int(seconds)} s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    return f"{int(seconds // 3600)} h ago"
