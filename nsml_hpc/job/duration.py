"""Slurm's duration grammar, the ONE parser of it: what ``--time`` takes and what sacct and
squeue print (``Elapsed``, ``TimeLimit``, ``%M``, ``%l``) are the same forms.

    M            minutes               30
    M:S          minutes and seconds   30:30, 00:01.500 (sacct prints fractions)
    H:M:S        hours to seconds      4:00:00, 00:01:11
    D-H          days and hours        2-12
    D-H:M        ... and minutes       2-12:30
    D-H:M:S      ... and seconds       365-00:00:00

``UNLIMITED``, ``INFINITE``, ``INVALID``, ``PARTITION_LIMIT``, ``NONE`` and empty text are no
duration (``None``). It lives with the in-job code (standard library only) because the job
wrapper reads its own time limit; :mod:`nsml_hpc.slurm` and the spec checks use it from here.
"""

from __future__ import annotations

import re

NO_DURATION = frozenset({"UNLIMITED", "INFINITE", "INVALID", "PARTITION_LIMIT", "NONE"})
_FORM = re.compile(
    r"^(?:(?P<days>[0-9]+)-)?(?P<clock>[0-9]+(?::[0-9]+){0,2})(?P<fraction>\.[0-9]+)?$",
    re.ASCII,
)


def parse_duration(text: str, *, fractions: bool = True) -> float | None:
    """Seconds in a Slurm duration (the forms in the module docstring); ``None`` for no
    duration; ValueError for anything else. ``fractions=False`` refuses ``S.mmm`` (Slurm
    reads no fractions in ``--time``)."""
    text = text.strip()
    if not text or text.upper() in NO_DURATION:
        return None
    match = _FORM.fullmatch(text)
    if match is None:
        raise ValueError(f"not a Slurm duration: {text!r}")
    parts = [int(part) for part in match["clock"].split(":")]
    if match["days"] is not None:
        hours, minutes, seconds = [*parts, 0, 0][:3]  # D-H, D-H:M, D-H:M:S
        with_seconds = len(parts) == 3
    else:
        hours, minutes, seconds = [0, 0, *parts][-3:] if len(parts) > 1 else [0, parts[0], 0]
        with_seconds = len(parts) > 1  # M:S, H:M:S (a lone number is minutes)
    fraction = match["fraction"]
    if fraction is not None and (not fractions or not with_seconds):
        raise ValueError(f"not a Slurm duration: {text!r}")
    days = int(match["days"] or 0)
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    return total + float(fraction) if fraction else float(total)
