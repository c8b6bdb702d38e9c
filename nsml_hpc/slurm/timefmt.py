"""Slurm's time formats: timestamps as sacct prints them, and durations printed the way Slurm
prints them. Durations are READ by the one parser of Slurm's duration grammar,
:func:`nsml_hpc.job.duration.parse_duration` (in-job code needs it too, and may import only
the job package)."""

from __future__ import annotations

from datetime import datetime


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
