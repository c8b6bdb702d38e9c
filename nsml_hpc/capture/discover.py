"""Finding metric logs that training code wrote on its own, inside a session's code folder
(its working directory): TensorBoard event files and CSV metric logs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

Kind = Literal["tensorboard", "csv"]
MAX_DEPTH = 6
MAX_FILES = 200
SKIPPED_DIRS = frozenset({".git", "__pycache__", ".venv", "venv", "node_modules", "snapshots"})
CSV_NAMES = frozenset({"metrics.csv", "training.log", "history.csv", "log.csv"})


@dataclass(frozen=True, order=True)
class CapturedFile:
    relative: str  # to the run directory
    kind: Kind


def discover(run_dir: str, root: str = "code") -> list[CapturedFile]:
    """Event files and CSV logs under ``run_dir/root`` (bounded depth and count)."""
    found: list[CapturedFile] = []
    base = os.path.join(run_dir, root)  # noqa: PTH118 - os.walk-based scan, strings throughout
    for directory, subdirs, files in os.walk(base):
        depth = directory[len(base) :].count(os.sep)
        subdirs[:] = [] if depth >= MAX_DEPTH else [d for d in subdirs if d not in SKIPPED_DIRS]
        for name in files:
            kind: Kind | None = None
            if "tfevents" in name:
                kind = "tensorboard"
            elif name in CSV_NAMES:
                kind = "csv"
            if kind is not None:
                path = os.path.join(directory, name)  # noqa: PTH118
                found.append(CapturedFile(os.path.relpath(path, run_dir), kind))
                if len(found) >= MAX_FILES:
                    return sorted(found)
    return sorted(found)
