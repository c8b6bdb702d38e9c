"""What a snapshot is on disk, as data: the folder names, the ``manifest.json`` schema, tag
rules, and how a selector (``latest``, a tag, ``best:<metric>[:min|max]``) picks one.

Pure and standard library only: the in-job API, the job wrapper and the front end share it.

    <run_dir>/snapshots/<tag>/               a complete snapshot (renamed into place)
    <run_dir>/snapshots/<tag>/manifest.json  written last, inside the temp folder
    <run_dir>/snapshots/.tmp-<tag>-<pid>-<n>  a save in progress (never listed)
    <run_dir>/snapshots/.old-<tag>-<pid>-<n>  the previous content of a tag being replaced
    <run_dir>/snapshots/.deleting-<tag>-<id>  a snapshot that gc/``model rm`` is deleting
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from nsml_hpc.errors import NotFoundError, SpecError
from nsml_hpc.job.direction import NO_OVERRIDES, Directions

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"
DELETING_PREFIX = ".deleting-"
TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")
RESERVED_TAGS = frozenset({"latest"})


def validate_tag(tag: str) -> str:
    """A tag is a folder name: letters, digits, ``_ . + -``; not ``latest``, no ``..``."""
    if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag) or ".." in tag:
        raise SpecError(
            f"invalid snapshot tag {tag!r}: use letters, digits, '_', '.', '+', '-' "
            "(at most 128, not starting with '.', '+' or '-', no '..')"
        )
    if tag in RESERVED_TAGS:
        raise SpecError(f"{tag!r} is reserved (it selects the newest snapshot); pick another tag")
    return tag


def default_tag(step: int | None, now: float) -> str:
    return f"step-{step}" if step is not None else f"snap-{int(now * 1000)}"


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the snapshot folder, with '/'
    size: int


@dataclass(frozen=True)
class Manifest:
    """The parsed ``manifest.json`` of one snapshot."""

    tag: str
    step: int | None
    metrics: dict[str, float | None]
    files: tuple[FileEntry, ...]
    created: float
    job_id: str | None = None
    session: str | None = None
    restart_count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(entry.size for entry in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "tag": self.tag,
            "step": self.step,
            "metrics": self.metrics,
            "files": [{"path": entry.path, "size": entry.size} for entry in self.files],
            "bytes": self.bytes,
            "created": self.created,
            "job_id": self.job_id,
            "session": self.session,
            "restart_count": self.restart_count,
            **self.extra,
        }


class ManifestError(ValueError):
    """A manifest.json that cannot be read as one (names the problem, not the folder)."""


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def parse_manifest(data: Any, folder_name: str) -> Manifest:
    """Check a decoded manifest; the folder's name is the tag (a copied folder keeps its data)."""
    if not isinstance(data, dict):
        raise ManifestError("manifest.json is not a JSON object")
    files_raw = data.get("files")
    if not isinstance(files_raw, list):
        raise ManifestError("manifest.json has no file list")
    files: list[FileEntry] = []
    for item in files_raw:
        if not isinstance(item, dict):
            raise ManifestError("manifest.json has a malformed file entry")
        path, size = item.get("path"), item.get("size")
        if not isinstance(path, str) or not safe_relative(path):
            raise ManifestError(f"manifest.json lists an unsafe path {path!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ManifestError(f"manifest.json has a bad size for {path!r}")
        files.append(FileEntry(path, size))
    step = data.get("step")
    if isinstance(step, bool) or not isinstance(step, int | None):
        raise ManifestError("manifest.json has a non-integer step")
    created = _finite(data.get("created"))
    if created is None:
        raise ManifestError("manifest.json has no creation time")
    metrics_raw = data.get("metrics") or {}
    if not isinstance(metrics_raw, dict):
        raise ManifestError("manifest.json has malformed metrics")
    metrics = {str(name): _finite(value) for name, value in metrics_raw.items()}
    job_id = data.get("job_id")
    restart = data.get("restart_count")
    known = {
        "format",
        "tag",
        "step",
        "metrics",
        "files",
        "bytes",
        "created",
        "job_id",
        "session",
        "restart_count",
    }
    return Manifest(
        tag=folder_name,
        step=step,
        metrics=metrics,
        files=tuple(files),
        created=created,
        job_id=str(job_id) if job_id is not None else None,
        session=data.get("session") if isinstance(data.get("session"), str) else None,
        restart_count=restart if isinstance(restart, int) and not isinstance(restart, bool) else 0,
        extra={key: value for key, value in data.items() if key not in known},
    )


def safe_relative(path: str) -> bool:
    """A relative path that stays inside its folder (no absolute, no '..', no empty parts)."""
    if not path or path.startswith("/") or "\x00" in path or "\\" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def is_found_tag(tag: str) -> bool:
    """The tag of a checkpoint file the training code wrote itself (``model ls`` lists them
    beside saved snapshots): its path in the run directory, so it always holds a '/', which a
    saved snapshot's tag never does. Safe, relative, at most 128 characters."""
    if not isinstance(tag, str) or "/" not in tag or len(tag) > 128:
        return False
    if tag.startswith("/") or "\\" in tag or any(ord(c) < 32 or ord(c) == 127 for c in tag):
        return False
    return all(part not in ("", ".", "..") for part in tag.split("/"))


def is_listed_name(name: str) -> bool:
    """Folder names that are snapshots (temp, replaced and deleting folders are not)."""
    return not name.startswith(".") and bool(TAG_PATTERN.fullmatch(name)) and ".." not in name


# --- selectors --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """``latest``, a tag, or ``best`` by ``metric`` in a direction."""

    kind: str  # "latest" | "tag" | "best"
    tag: str | None = None
    metric: str | None = None
    maximize: bool = False

    def __str__(self) -> str:
        if self.kind == "latest":
            return "latest"
        if self.kind == "tag":
            return str(self.tag)
        return f"best:{self.metric}:{'max' if self.maximize else 'min'}"


def parse_selector(text: str, directions: Directions = NO_OVERRIDES) -> Selector:
    """``latest`` | TAG | ``best:METRIC`` | ``best:METRIC:min`` | ``best:METRIC:max``.

    Without ``:min``/``:max`` the direction is ``directions.goal(METRIC)`` (the one rule, with
    the user's ``[metrics]`` overrides: :mod:`nsml_hpc.job.direction`)."""
    if not isinstance(text, str) or not text:
        raise SpecError("a snapshot is chosen by 'latest', a tag, or 'best:<metric>[:min|max]'")
    if text == "latest":
        return Selector("latest")
    if text.startswith("best:"):
        parts = text.split(":")
        metric = parts[1] if len(parts) > 1 else ""
        if not metric or len(parts) > 3 or (len(parts) == 3 and parts[2] not in ("min", "max")):
            raise SpecError(
                f"invalid selector {text!r}: use best:<metric>, best:<metric>:min "
                "or best:<metric>:max"
            )
        maximize = parts[2] == "max" if len(parts) == 3 else directions.maximize(metric)
        return Selector("best", metric=metric, maximize=maximize)
    if text in RESERVED_TAGS:
        return Selector("latest")
    if is_found_tag(text):
        return Selector("tag", tag=text)
    try:
        validate_tag(text)
    except SpecError:
        raise SpecError(
            f"invalid snapshot {text!r}: use 'latest', a tag, or 'best:<metric>[:min|max]'"
        ) from None
    return Selector("tag", tag=text)


def recency_key(manifest: Manifest) -> tuple[float, int, str]:
    """Newest last: by creation time, then step, then tag (a total order)."""
    return (manifest.created, manifest.step if manifest.step is not None else -1, manifest.tag)


def choose(manifests: list[Manifest], selector: Selector, where: str) -> Manifest:
    """The snapshot ``selector`` names among ``manifests`` (intact ones); ``where`` names the
    session in error messages."""
    if selector.kind == "tag":
        for manifest in manifests:
            if manifest.tag == selector.tag:
                return manifest
        raise NotFoundError(f"{where} has no snapshot {selector.tag!r}")
    if not manifests:
        raise NotFoundError(f"{where} has no snapshots")
    if selector.kind == "latest":
        return max(manifests, key=recency_key)
    metric = selector.metric or ""
    scored = [m for m in manifests if m.metrics.get(metric) is not None]
    if not scored:
        seen = sorted({name for m in manifests for name in m.metrics})
        raise NotFoundError(
            f"no snapshot of {where} recorded metric {metric!r} "
            f"(metrics at save time: {', '.join(seen) or 'none'})"
        )

    def score(manifest: Manifest) -> tuple[float, tuple[float, int, str]]:
        value = manifest.metrics[metric]
        assert value is not None
        return (value if selector.maximize else -value, recency_key(manifest))

    return max(scored, key=score)
