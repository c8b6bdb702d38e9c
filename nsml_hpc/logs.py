"""Logging of the front ends: ``-v`` / ``-vv`` on the command line or ``NSML_HPC_LOG``.

Every module logs through ``logging.getLogger(__name__)`` (``nsml_hpc.backends.runner``:
each Slurm command with its exit code and time; ``nsml_hpc.sync.run``: what a sync asked and
found; ``nsml_hpc.catalog.engine``: which catalog opened). Nothing is shown by default
(warnings and errors reach the user as one line from the CLI anyway); ``-v`` shows INFO,
``-vv`` DEBUG, on stderr. ``NSML_HPC_LOG`` takes a level name (``debug``, ``info``,
``warning``) or a number and applies when no ``-v`` is given, so cron lines and notebooks can
turn it on too.
"""

from __future__ import annotations

import logging
import os
import sys

ENV = "NSML_HPC_LOG"
FORMAT = "nsml-hpc: %(levelname)s %(name)s: %(message)s"
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def level_from(verbosity: int, environ: dict[str, str] | None = None) -> int | None:
    """The level ``-v`` repeated ``verbosity`` times asks for, else ``NSML_HPC_LOG``'s, else
    None (logging stays off). An unknown ``NSML_HPC_LOG`` value is ignored with a warning
    line (a typo there must not stop a cron job)."""
    if verbosity >= 2:
        return logging.DEBUG
    if verbosity == 1:
        return logging.INFO
    env = os.environ if environ is None else environ
    text = env.get(ENV, "").strip().lower()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    if text in LEVELS:
        return LEVELS[text]
    from nsml_hpc.suggest import did_you_mean

    print(
        f"nsml-hpc: warning: {ENV}={text!r} is not a level{did_you_mean(text, LEVELS)}; "
        f"use one of {', '.join(LEVELS)}",
        file=sys.stderr,
    )
    return None


def configure(verbosity: int = 0, environ: dict[str, str] | None = None) -> int | None:
    """Send nsml-hpc's log records of the chosen level to stderr; returns the level."""
    level = level_from(verbosity, environ)
    logger = logging.getLogger("nsml_hpc")
    if level is None:
        return None
    if not any(getattr(h, "_nsml_hpc", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._nsml_hpc = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level)
    return level


__all__ = ["ENV", "configure", "level_from"]
