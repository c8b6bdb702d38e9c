"""Finding what training code wrote on its own inside a session's code folder (its working
directory): TensorBoard event files and CSV metric logs, and checkpoint files (Lightning's
``ModelCheckpoint``, ``torch.save``), through the cluster's
:class:`~nsml_hpc.backends.files.RunFiles` (so remote clusters work too). ONE bounded walk
finds both: the metric logs go to capture, the checkpoints to the snapshot catalog."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Literal

from nsml_hpc.backends.files import LocalFiles, RunFiles
from nsml_hpc.capture.checkpoints import is_checkpoint
from nsml_hpc.job.layout import CODE_DIR, SNAPSHOTS_DIR

Kind = Literal["tensorboard", "csv"]
MAX_DEPTH = 6
MAX_FILES = 200
MAX_CHECKPOINTS = 500
MAX_DIRS = 200
SKIPPED_DIRS = frozenset({".git", "__pycache__", ".venv", "venv", "node_modules", SNAPSHOTS_DIR})
HIDDEN_PREFIX = ".nsml-"  # our own folders in the code folder (a checkpoint being deleted)
CSV_NAMES = frozenset({"metrics.csv", "training.log", "history.csv", "log.csv"})


@dataclass(frozen=True, order=True)
class CapturedFile:
    relative: str  # to the run directory
    kind: Kind


@dataclass(frozen=True, order=True)
class FoundFile:
    """A checkpoint file the walk saw (its size is asked for later, in one call)."""

    relative: str  # to the run directory
    mtime_ns: int


@dataclass
class Walk:
    logs: list[CapturedFile] = field(default_factory=list)
    checkpoints: list[FoundFile] = field(default_factory=list)


def walk(run_dir: str, root: str = CODE_DIR, files: RunFiles | None = None) -> Walk:
    """Metric logs and checkpoints under ``run_dir/root`` (bounded depth, folder and file
    counts), listed through ``files`` (this machine's file system by default; on a remote
    cluster one listing per folder, at most MAX_DIRS of them)."""
    files = files if files is not None else LocalFiles()
    found = Walk()
    pending = [(root, 0)]
    visited = 0
    while pending and visited < MAX_DIRS:
        relative, depth = pending.pop(0)
        visited += 1
        entries = files.list_dir(posixpath.join(run_dir, relative)) or []
        for entry in sorted(entries, key=lambda item: item.name):
            path = posixpath.join(relative, entry.name)
            if entry.is_dir:
                if (
                    depth < MAX_DEPTH
                    and entry.name not in SKIPPED_DIRS
                    and not entry.name.startswith(HIDDEN_PREFIX)
                ):
                    pending.append((path, depth + 1))
                continue
            kind: Kind | None = None
            if "tfevents" in entry.name:
                kind = "tensorboard"
            elif entry.name in CSV_NAMES:
                kind = "csv"
            if kind is not None and len(found.logs) < MAX_FILES:
                found.logs.append(CapturedFile(path, kind))
            elif is_checkpoint(entry.name) and len(found.checkpoints) < MAX_CHECKPOINTS:
                found.checkpoints.append(FoundFile(path, entry.mtime_ns))
    found.logs.sort()
    found.checkpoints.sort()
    return found


def discover(
    run_dir: str, root: str = CODE_DIR, files: RunFiles | None = None
) -> list[CapturedFile]:
    """The event files and CSV logs of :func:`walk`."""
    return walk(run_dir, root, files).logs
