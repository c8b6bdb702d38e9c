"""Slurm's time formats: elapsed durations and timestamps as sacct prints them."""

from __future__ import annotations

from datetime import datetime


def parse_duration(text: str) -> float | None:
    """Seconds in ``[D-]HH:MM:SS``, ``MM:SS`` or ``MM:SS.mmm``; ``None`` for empty/UNLIMITED."""
    text = text.strip()
    if not text or text.upper() in ("UNLIMITED", "INVALID", "PARTITION_LIMIT", "NONE"):
        return None
    days = 0
    if "-" in text:
        day_text, text = text.split("-", 1)
        days = int(day_text)
    parts = [float(part) for part in text.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    hours, minutes, seconds = parts[-3:]
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def parse_timestamp(text: str) -> float | None:
    """Epoch seconds of sacct's local ISO timestamp; ``None`` for ``Unknown``/``None``/empty."""
    text = text.strip()
    if not text or text in ("Unknown", "None", "N/A"):
        return None
    return datetime.fromisoformat(text).timestamp()


def format_duration(seconds: float | None, *, pad_first: bool = True) -> str:
    """``1-02:03:04`` / ``02:03:04`` / ``03:04`` for tables; ``-`` when unknown.

    ``pad_first=False`` gives squeue's own form (``2:03:04``, ``3:04``)."""
    if seconds is None:
        return "-"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    first = "02d" if pad_first else "d"
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    if hours:
        return f"{hours:{first}}:{minutes:02d}:{secs:02d}"
    return f"{minutes:{first}}:{secs:02d}"
