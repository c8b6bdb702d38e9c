"""Slurm's time formats: timestamps exchanged without time zones, and durations printed the way
Slurm prints them. Durations are READ by the one parser of Slurm's duration grammar,
:func:`nsml_hpc.job.duration.parse_duration` (in-job code needs it too, and may import only
the job package).

A Slurm command prints and reads times of day in the *cluster's* local zone, which need not be
the client's (a laptop in Seoul, a cluster in UTC). So nothing zoned ever crosses the seam:
every Slurm command runs with ``SLURM_TIME_FORMAT=%s`` (:data:`TIME_FORMAT_ENV`; sacct,
squeue and ``sbatch --test-only`` then print epoch seconds, checked on Slurm 22.05), and a
start time sent to sacct is relative to the cluster's own clock (``now-600seconds``). The
catalog stores epoch seconds (UTC); only the front end's display turns them into local time.
"""

from __future__ import annotations

import math

# The environment every Slurm command runs with: times as epoch seconds, never zoned text.
TIME_FORMAT_ENV = {"SLURM_TIME_FORMAT": "%s"}
_NO_TIME = frozenset({"", "Unknown", "None", "N/A", "0"})


def parse_timestamp(text: str) -> float | None:
    """Epoch seconds as Slurm prints them under ``SLURM_TIME_FORMAT=%s``; ``None`` for
    ``Unknown``/``None``/``N/A``/empty/``0``. A time of day (``2026-12-01T07:14:19``) is a
    ValueError: it is in the cluster's zone, which the client cannot know."""
    text = text.strip()
    if text in _NO_TIME:
        return None
    if not text.isdigit():
        raise ValueError(
            f"Slurm printed the time {text!r}, not epoch seconds (SLURM_TIME_FORMAT=%s was "
            "not honoured)"
        )
    return float(text)


def relative_start(since: float, now: float) -> str:
    """``--starttime`` for "``since`` or later" on the cluster's own clock (``now-600seconds``):
    a time of day would be read in the cluster's zone, and epoch seconds are refused there."""
    return f"now-{max(0, math.ceil(now - since))}seconds"


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


def format_time_limit(minutes: int | None) -> str:
    """A time limit as sacct's ``Timelimit`` prints it: ``00:05:00``, ``1-00:00:00``;
    ``UNLIMITED`` for None (for pyslurm, which gives minutes and None for INFINITE)."""
    if minutes is None:
        return "UNLIMITED"
    days, rest = divmod(int(minutes), 1440)
    text = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{text}" if days else text
