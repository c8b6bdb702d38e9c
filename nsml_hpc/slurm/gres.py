"""GRES and TRES strings: ONE parser family for every place Slurm (or pyslurm) spells them.

    squeue %b (asked)        gres:gpu:2   gres/gpu:a100:2   gpu:2   N/A
    sinfo Gres / GresUsed    gpu:4   gpu:a100:2(S:0-1),gpu:v100:2   gpu:(null):2(IDX:0-1)   gpu
    pyslurm                  {"gpu:a100": 4}  {"gpu:a100": {"count": 2, ...}}  ["gpu:3"]
                             (spelled as GRES text by :func:`gres_text`)
    sacct AllocTRES          billing=1,cpu=1,gres/gpu=2,gres/gpu:a100=2,mem=4G,node=1

A GRES item is ``[gres:|gres/]NAME[:TYPE][:COUNT][(...)]``: a bare name counts 1, a count must
be ASCII digits (an item with another count is skipped), ``(null)`` is no type, and what
follows ``(`` (socket and index lists, with their own commas) is ignored. A TRES entry is
``gres/NAME[:TYPE]=COUNT``; other TRES (cpu, mem, node, billing) are not GRES. The GPU count:
the untyped ``gpu`` entries when there are any (TRES lists the total AND each type), else the
typed ones added up; ``None`` when nothing names a GPU.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

GPU = "gpu"
NO_GRES = frozenset({"", "N/A", "(null)", "None"})
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_COUNT = re.compile(r"^[0-9]+$", re.ASCII)


@dataclass(frozen=True)
class Gres:
    name: str  # gpu, mps, shard, ...
    type: str | None  # a100; None when untyped
    count: int


def split_gres(text: str) -> list[str]:
    """Split a GRES list on commas outside parentheses (``gpu:a100:3(IDX:0,2-3),mps:100``)."""
    items: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _item(text: str) -> Gres | None:
    base = text.replace(":(null)", "").split("(", 1)[0].strip()
    for prefix in ("gres:", "gres/"):
        base = base.removeprefix(prefix)
    parts = base.split(":")
    name = parts[0]
    if not _NAME.fullmatch(name):
        return None
    if len(parts) == 1:
        return Gres(name, None, 1)
    if not _COUNT.fullmatch(parts[-1]):
        return None
    kind = parts[1] if len(parts) >= 3 and parts[1] else None
    return Gres(name, kind, int(parts[-1]))


def parse_gres(text: str) -> list[Gres]:
    """The items of a GRES list (squeue ``%b``, sinfo ``Gres``/``GresUsed``, pyslurm)."""
    if text.strip() in NO_GRES:
        return []
    return [item for item in map(_item, split_gres(text)) if item is not None]


def parse_tres(text: str) -> list[Gres]:
    """The GRES entries of a TRES list (sacct ``AllocTRES``/``ReqTRES``)."""
    found: list[Gres] = []
    for entry in text.split(","):
        key, _, value = entry.strip().partition("=")
        if not key.startswith("gres/") or not _COUNT.fullmatch(value):
            continue
        name, _, kind = key.removeprefix("gres/").partition(":")
        if _NAME.fullmatch(name):
            found.append(Gres(name, kind or None, int(value)))
    return found


def gpu_count(items: Iterable[Gres]) -> int | None:
    """GPUs in ``items``: the untyped entries if any, else the typed ones added up; None
    when no item is a GPU."""
    gpus = [item for item in items if item.name == GPU]
    if not gpus:
        return None
    untyped = [item.count for item in gpus if item.type is None]
    return sum(untyped) if untyped else sum(item.count for item in gpus)


def gpu_types(items: Iterable[Gres]) -> tuple[str, ...]:
    """The GPU types named, in order of appearance, each once."""
    return tuple(dict.fromkeys(i.type for i in items if i.name == GPU and i.type is not None))


def gpus_in_gres(text: str) -> int:
    """GPUs in a GRES list; 0 when it names none (``N/A``, a CPU-only node or job)."""
    return gpu_count(parse_gres(text)) or 0


def gpus_in_tres(text: str) -> int | None:
    """GPUs in a TRES list; None when it names none."""
    return gpu_count(parse_tres(text))


def gres_text(value: object) -> str:
    """pyslurm's GRES as GRES text: a ``{"gpu:a100": 4}`` dict (with indexes, 25.11 gives
    ``{"gpu:a100": {"count": 2, "indexes": "0-1"}}``), a list of items (the old dictionary
    API's ``["gpu:3"]``), a string, or None."""
    if isinstance(value, Mapping):
        items = []
        for key, count in value.items():
            if isinstance(count, Mapping):
                count = count.get("count")
            items.append(f"{key}:{count}")
        return ",".join(items)
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value or "")
