"""Finding metric logs that training code wrote on its own, inside a session's code folder
(its working directory): TensorBoard event files and CSV metric logs, through the cluster's
:class:`~nsml_hpc.backends.files.RunFiles` (so remote clusters work too)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Literal

from nsml_hpc.backends.files import LocalFiles, RunFiles
from nsml_hpc.job.layout import CODE_DIR, SNAPSHOTS_DIR

Kind = Literal["tensorboard", "csv"]
MAX_DEPTH = 6
MAX_FILES = 200
MAX_DIRS = 200
SKIPPED_DIRS = frozenset({".git", "__pycache__", ".venv", "venv", "node_modules", SNAPSHOTS_DIR})
CSV_NAMES = frozenset({"metrics.csv", "training.log", "history.csv", "log.csv"})


@dataclass(frozen=True, order=True)
class CapturedFile:
    relative: str  # to the run directory
    kind: Kind


def discover(
    run_dir: str, root: str = CODE_DIR, files: RunFiles | None = None
) -> list[CapturedFile]:
    """Event files and CSV logs under ``run_dir/root`` (bounded depth, folder and file count),
    listed through ``files`` (this machine's file system by default; on a remote cluster one
    listing per folder, at most MAX_DIRS of them)."""
    files = files if files is not None else LocalFiles()
    found: list[CapturedFile] = []
    pending = [(root, 0)]
    visited = 0
    while pending and visited < MAX_DIRS:
        relative, depth = pending.pop(0)
        visited += 1
        entries = files.list_dir(posixpath.join(run_dir, relative)) or []
        for entry in sorted(entries, key=lambda item: item.name):
            path = posixpath.join(relative, entry.name)
            if entry.is_dir:
                if depth < MAX_DEPTH and entry.name not in SKIPPED_DIRS:
                    pending.append((path, depth + 1))
                continue
            kind: Kind | None = None
            if "tfevents" in entry.name:
                kind = "tensorboard"
            elif entry.name in CSV_NAMES:
                kind = "csv"
            if kind is not None:
                found.append(CapturedFile(path, kind))
                if len(found) >= MAX_FILES:
                    return sorted(found)
    return sorted(found)
