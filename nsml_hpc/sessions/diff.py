"""``nsml-hpc diff A B``: how two sessions differ — spec, hyperparameters, and a unified diff of
their code snapshots (text files; binary and oversized files are named, not printed)."""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.hparam_events import taken_changes, with_history
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.job.layout import CODE_DIR

MAX_DIFF_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FieldChange:
    key: str
    left: Any
    right: Any


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): data}


def field_changes(left: dict[str, Any], right: dict[str, Any]) -> list[FieldChange]:
    """Keys (dotted for nested dicts) whose values differ; a missing key shows as ``None``."""
    flat_left, flat_right = _flatten(left), _flatten(right)
    return [
        FieldChange(key, flat_left.get(key), flat_right.get(key))
        for key in sorted(flat_left.keys() | flat_right.keys())
        if flat_left.get(key) != flat_right.get(key)
    ]


def _files(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            found[path.relative_to(root).as_posix()] = path
    return found


def _text(path: Path) -> list[str] | None:
    """The file's lines, or None for binary / oversized files."""
    if path.stat().st_size > MAX_DIFF_FILE_BYTES:
        return None
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def code_diff(
    left_root: Path, right_root: Path, left_label: str, right_label: str
) -> Iterator[str]:
    """Unified diff lines of two code snapshots, file by file in name order."""
    left, right = _files(left_root), _files(right_root)
    for name in sorted(left.keys() | right.keys()):
        a = _text(left[name]) if name in left else []
        b = _text(right[name]) if name in right else []
        if a is None or b is None:
            if (
                name in left
                and name in right
                and left[name].read_bytes() == right[name].read_bytes()
            ):
                continue
            yield f"Binary or large files {left_label}/{name} and {right_label}/{name} differ\n"
            continue
        yield from difflib.unified_diff(
            a,
            b,
            fromfile=f"{left_label}/{name}" if name in left else "/dev/null",
            tofile=f"{right_label}/{name}" if name in right else "/dev/null",
        )


@dataclass(frozen=True)
class SessionDiff:
    left: str
    right: str
    spec: list[FieldChange]
    hyperparameters: list[FieldChange]
    code: list[str]


def diff_sessions(
    catalog: Catalog, left_name: str, right_name: str, *, code: bool = True
) -> SessionDiff:
    left, right = get_session(catalog, left_name), get_session(catalog, right_name)
    left_spec, right_spec = json.loads(left.spec_json), json.loads(right.spec_json)
    for spec in (left_spec, right_spec):
        spec.pop("args", None)  # shown as hyperparameters
    lines: list[str] = []
    if code:
        lines = list(
            code_diff(
                Path(left.run_dir) / CODE_DIR,
                Path(right.run_dir) / CODE_DIR,
                left.name,
                right.name,
            )
        )
    taken = taken_changes(catalog, [left.id or -1, right.id or -1])
    return SessionDiff(
        left=left.name,
        right=right.name,
        spec=field_changes(left_spec, right_spec),
        hyperparameters=field_changes(  # values changed while running show their history
            with_history(json.loads(left.hyperparameters_json), taken[left.id or -1]),
            with_history(json.loads(right.hyperparameters_json), taken[right.id or -1]),
        ),
        code=lines,
    )
