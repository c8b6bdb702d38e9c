"""Checkpoint files that training code writes on its own, recognised by name (pure).

* Lightning's ``ModelCheckpoint``: ``epoch=E-step=S.ckpt`` (``-vN`` when a name repeats),
  names with monitored metrics (``epoch=3-val_loss=0.25.ckpt``) and ``last.ckpt``
  (``last-vN.ckpt``) -- kind ``lightning``;
* ``torch.save`` files: ``.pt``, ``.pth`` and other ``.ckpt`` -- kind ``torch``;
* ``.safetensors`` -- kind ``safetensors``.

The step and epoch come from the name where it has them (``step=S``, ``step_S``, ``stepS``,
``iter_S``, ``epoch=E``, ``epoch_E``, or a trailing ``-N``/``_N``); ``name=value`` parts of a
Lightning name are the metrics at save time. Nothing here opens a file (and nothing imports
torch): a checkpoint is known by where it is and what it is called.
"""

from __future__ import annotations

import hashlib
import math
import posixpath
import re
from dataclasses import dataclass, field

from nsml_hpc.job.snapshot_format import is_found_tag

SUFFIXES = (".ckpt", ".pt", ".pth", ".safetensors")
MAX_TAG = 128
_PAIR = re.compile(
    r"(?:^|[-_ ])(?P<name>[A-Za-z_][A-Za-z0-9_./]*)="
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?=$|[-_ ])"
)
_STEP = re.compile(r"(?:^|[^A-Za-z])(?:global_step|step|iteration|iter|it)[=_-]?(\d+)", re.I)
_EPOCH = re.compile(r"(?:^|[^A-Za-z])epoch[=_-]?(\d+)", re.I)
_TRAILING = re.compile(r"[-_](\d+)$")
_LIGHTNING = re.compile(r"^(?:last|epoch=\d+.*)(?:-v\d+)?$")
_VERSION_SUFFIX = re.compile(r"-v\d+$")


@dataclass(frozen=True)
class CheckpointName:
    kind: str  # lightning | torch | safetensors
    step: int | None
    epoch: int | None
    metrics: dict[str, float | None] = field(default_factory=dict)


def _stem(name: str) -> str | None:
    for suffix in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def is_checkpoint(name: str) -> bool:
    return not name.startswith(".") and _stem(name) is not None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_checkpoint_name(name: str) -> CheckpointName | None:
    """What a file name says about a checkpoint; None if it is not one."""
    stem = _stem(name)
    if stem is None or name.startswith("."):
        return None
    if name.endswith(".safetensors"):
        kind = "safetensors"
    elif name.endswith(".ckpt") and _LIGHTNING.match(stem):
        kind = "lightning"
    else:
        kind = "torch"
    core = _VERSION_SUFFIX.sub("", stem)
    metrics: dict[str, float | None] = {}
    for match in _PAIR.finditer(core):
        key = match.group("name")
        if key.lower() not in ("step", "epoch", "global_step"):
            metrics[key] = _number(match.group("value"))
    step_match, epoch_match = _STEP.search(core), _EPOCH.search(core)
    step = int(step_match.group(1)) if step_match else None
    epoch = int(epoch_match.group(1)) if epoch_match else None
    if step is None and epoch is None and not metrics:
        trailing = _TRAILING.search(core)
        step = int(trailing.group(1)) if trailing else None
    if epoch is not None:
        metrics.setdefault("epoch", float(epoch))
    return CheckpointName(kind=kind, step=step, epoch=epoch, metrics=metrics)


def found_tag(relative: str) -> str:
    """The tag ``model ls`` shows for a found checkpoint: its path in the run directory
    (``code/checkpoints/epoch=1-step=100.ckpt``); a path too long for a tag keeps its name
    and a hash of the rest. A found tag always holds a '/', which a saved snapshot's never
    does, so the two can never collide."""
    if len(relative) <= MAX_TAG:
        return relative
    head, name = posixpath.split(relative)
    digest = hashlib.sha1(head.encode("utf-8", "surrogateescape")).hexdigest()[:10]  # noqa: S324
    top = relative.split("/", 1)[0]
    room = MAX_TAG - len(top) - len(digest) - 4
    return f"{top}/~{digest}/{name[-room:]}"


__all__ = [
    "SUFFIXES",
    "CheckpointName",
    "found_tag",
    "is_checkpoint",
    "is_found_tag",
    "parse_checkpoint_name",
]
