"""The Slurm release: ``sinfo --version`` and its pure parsers (used by ``cluster test`` and by
the pyslurm backend to check that pyslurm was built for the cluster's release)."""

from __future__ import annotations

import re

VERSION_COMMAND = ("sinfo", "--version")
_VERSION = re.compile(r"\b(\d+)\.(\d+)(?:\.(\d+))?\b")


def parse_slurm_version(text: str) -> str | None:
    """``slurm-wlm 22.05.8`` / ``slurm 24.11.1`` -> ``22.05.8`` / ``24.11.1``; None if absent."""
    match = _VERSION.search(text)
    if match is None:
        return None
    return ".".join(part for part in match.groups() if part is not None)


def major_minor(version: str) -> tuple[int, int] | None:
    """``22.05.8`` -> ``(22, 5)``; pyslurm's ``25.11.2`` -> ``(25, 11)``."""
    match = _VERSION.search(version)
    return (int(match.group(1)), int(match.group(2))) if match else None
