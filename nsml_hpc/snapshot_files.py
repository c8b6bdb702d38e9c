"""Snapshots as the run directory holds them: ``<run_dir>/snapshots/<tag>/manifest.json``.

A small reader for the session view (list), and the two guarded changes the user can make:
pin (the manifest gets ``"pinned": true``, rewritten atomically) and delete (refused for a
pinned snapshot or anything not shaped like a snapshot folder; the folder is first renamed
to a hidden name, so no reader ever sees half a snapshot, then removed).

A snapshot folder is written under a temporary (dot) name and renamed when complete, so
dot-folders are in progress and never listed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsml_hpc.errors import NotFoundError, SpecError
from nsml_hpc.rundir import write_json_atomic

SNAPSHOTS_DIR = "snapshots"
MANIFEST_FILE = "manifest.json"
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,127}$")


@dataclass(frozen=True)
class SnapshotInfo:
    tag: str
    path: Path
    step: int | None
    created_at: float | None
    metrics: dict[str, float | None] = field(default_factory=dict)
    size_bytes: int = 0
    files: int = 0
    pinned: bool = False


def check_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag) or ".." in tag:
        raise SpecError(f"{tag!r} is not a snapshot tag")
    return tag


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _files_and_size(folder: Path, manifest: dict[str, Any]) -> tuple[int, int]:
    listed = manifest.get("files")
    if isinstance(listed, dict):
        sizes = [value for value in listed.values() if isinstance(value, int)]
        return len(listed), sum(sizes)
    if isinstance(listed, list):
        sizes = [item.get("size", 0) for item in listed if isinstance(item, dict)]
        total = sum(size for size in sizes if isinstance(size, int))
        return len(listed), total
    count = total = 0
    for directory, _dirs, names in os.walk(folder):
        for name in names:
            if name == MANIFEST_FILE:
                continue
            count += 1
            try:
                total += (Path(directory) / name).stat().st_size
            except OSError:
                continue
    return count, total


def read_snapshot(folder: Path) -> SnapshotInfo | None:
    """One snapshot folder, or None if it is not a complete snapshot."""
    if folder.name.startswith(".") or folder.is_symlink() or not folder.is_dir():
        return None
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    metrics_raw = manifest.get("metrics")
    metrics = (
        {str(key): _number(value) for key, value in metrics_raw.items()}
        if isinstance(metrics_raw, dict)
        else {}
    )
    step = manifest.get("step")
    created = _number(manifest.get("created_at", manifest.get("time")))
    files, size = _files_and_size(folder, manifest)
    return SnapshotInfo(
        tag=folder.name,
        path=folder,
        step=step if isinstance(step, int) and not isinstance(step, bool) else None,
        created_at=created,
        metrics=metrics,
        size_bytes=size,
        files=files,
        pinned=manifest.get("pinned") is True,
    )


def list_snapshots(run_dir: Path) -> list[SnapshotInfo]:
    """Complete snapshots of a run directory, oldest step first."""
    root = run_dir / SNAPSHOTS_DIR
    try:
        folders = list(root.iterdir())
    except OSError:
        return []
    found = [info for info in (read_snapshot(folder) for folder in folders) if info]
    return sorted(found, key=lambda info: (info.step is None, info.step or 0, info.tag))


def _snapshot_folder(run_dir: Path, tag: str) -> Path:
    check_tag(tag)
    root = (run_dir / SNAPSHOTS_DIR).resolve()
    folder = run_dir / SNAPSHOTS_DIR / tag
    if folder.is_symlink() or folder.resolve().parent != root:
        raise SpecError(f"{folder} is not a snapshot folder of {run_dir}")
    if read_snapshot(folder) is None:
        raise NotFoundError(f"no snapshot {tag!r} in {run_dir}")
    return folder


def set_pinned(run_dir: Path, tag: str, pinned: bool) -> SnapshotInfo:
    """Pin (or unpin) a snapshot: its manifest is rewritten atomically with ``pinned``."""
    folder = _snapshot_folder(run_dir, tag)
    manifest_path = folder / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text("utf-8"))
    manifest["pinned"] = pinned
    write_json_atomic(manifest_path, manifest)
    info = read_snapshot(folder)
    assert info is not None
    return info


def remove_snapshot(run_dir: Path, tag: str) -> Path:
    """Delete an unpinned snapshot folder: hidden rename first, then removal."""
    folder = _snapshot_folder(run_dir, tag)
    info = read_snapshot(folder)
    if info is not None and info.pinned:
        raise SpecError(f"snapshot {tag} is pinned; unpin it before deleting it")
    hidden = folder.with_name(f".deleting-{tag}-{os.getpid()}")
    folder.rename(hidden)
    shutil.rmtree(hidden)
    return folder
