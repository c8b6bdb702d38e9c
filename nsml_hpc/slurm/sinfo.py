"""GPUs per node and partition: the ONE sinfo call behind the cluster view, and its parser.

``sinfo --Node`` prints one line per (node, partition) with the node's configured GRES and the
GRES in use, so a partition's totals are sums over its lines. The parser is pure and tested on
output captured from the real sandbox (tests/data/sinfo_*.txt).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nsml_hpc.slurm.gres import gpu_count, gpu_types, gpus_in_gres, parse_gres

# Each field ends with '|' (sinfo's suffix syntax, no width = as wide as needed), so a line
# splits into len(SINFO_FIELDS) + 1 parts, the last one empty.
SINFO_FIELDS = ("NodeHost", "Partition", "StateLong", "CPUsState", "Gres", "GresUsed")
# Node states in which idle GPUs can actually be given to a job.
USABLE_STATES = frozenset({"idle", "mixed", "allocated", "completing", "planned"})


@dataclass(frozen=True)
class NodeGpus:
    """One node as one partition sees it."""

    node: str
    partition: str
    is_default: bool
    state: str
    cpus_allocated: int
    cpus_total: int
    gpus_total: int
    gpus_used: int
    gpu_types: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return node_state_usable(self.state)


@dataclass(frozen=True)
class PartitionGpus:
    """GPUs of one partition: total, allocated, idle (free on usable nodes), unavailable."""

    name: str
    is_default: bool
    nodes: int
    nodes_usable: int
    gpus_total: int
    gpus_allocated: int
    gpus_idle: int
    gpus_unavailable: int
    cpus_total: int
    cpus_allocated: int
    gpu_types: tuple[str, ...] = ()


def sinfo_command() -> list[str]:
    return [
        "sinfo",
        "--noheader",
        "--Node",
        f"--Format={','.join(f'{field}:|' for field in SINFO_FIELDS)}",
    ]


def node_state_usable(state: str) -> bool:
    """``idle``/``mixed``/``allocated`` are usable; flags (``*`` not responding, ``~`` powered
    off, ``#`` powering up, ``!``/``%``/``@``) and drain/down/fail states are not."""
    state = state.strip().lower()
    if not state or state[-1] in "*~#!%@$^-":
        return False
    return state in USABLE_STATES


def _cpus(text: str) -> tuple[int, int]:
    """``A/I/O/T`` -> (allocated, total)."""
    parts = text.strip().split("/")
    if len(parts) != 4 or not all(part.isdigit() for part in parts):
        return 0, 0
    return int(parts[0]), int(parts[3])


def parse_sinfo(text: str) -> list[NodeGpus]:
    """Node lines from ``sinfo_command()`` output; lines of other shapes are skipped."""
    nodes: list[NodeGpus] = []
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) == len(SINFO_FIELDS) + 1 and not fields[-1].strip():
            fields = fields[:-1]
        if len(fields) != len(SINFO_FIELDS):
            continue
        node, partition, state, cpus, gres, gres_used = (field.strip() for field in fields)
        if not node or not partition:
            continue
        configured = parse_gres(gres)
        total, types = gpu_count(configured) or 0, gpu_types(configured)
        used = gpus_in_gres(gres_used)
        allocated_cpus, total_cpus = _cpus(cpus)
        nodes.append(
            NodeGpus(
                node=node,
                partition=partition.rstrip("*"),
                is_default=partition.endswith("*"),
                state=state,
                cpus_allocated=allocated_cpus,
                cpus_total=total_cpus,
                gpus_total=total,
                gpus_used=min(used, total) if total else used,
                gpu_types=types,
            )
        )
    return nodes


def partition_summary(nodes: Iterable[NodeGpus]) -> list[PartitionGpus]:
    """Per-partition GPU totals, the default partition first, then by name."""
    grouped: dict[str, list[NodeGpus]] = {}
    for node in nodes:
        grouped.setdefault(node.partition, []).append(node)
    summaries: list[PartitionGpus] = []
    for name, members in grouped.items():
        usable = [node for node in members if node.usable]
        total = sum(node.gpus_total for node in members)
        allocated = sum(node.gpus_used for node in members)
        idle = sum(max(node.gpus_total - node.gpus_used, 0) for node in usable)
        types: list[str] = []
        for node in members:
            types.extend(kind for kind in node.gpu_types if kind not in types)
        summaries.append(
            PartitionGpus(
                name=name,
                is_default=any(node.is_default for node in members),
                nodes=len(members),
                nodes_usable=len(usable),
                gpus_total=total,
                gpus_allocated=allocated,
                gpus_idle=idle,
                gpus_unavailable=max(total - allocated - idle, 0),
                cpus_total=sum(node.cpus_total for node in members),
                cpus_allocated=sum(node.cpus_allocated for node in members),
                gpu_types=tuple(types),
            )
        )
    return sorted(summaries, key=lambda item: (not item.is_default, item.name))


def per_node_text(nodes: list[NodeGpus], partition: str) -> str:
    """GPUs on each node of ``partition``: ``2``, or ``2-8`` when nodes differ."""
    counts = sorted({node.gpus_total for node in nodes if node.partition == partition})
    if not counts:
        return "-"
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


def node_rows(nodes: list[NodeGpus]) -> list[dict[str, Any]]:
    """One row per node (its partitions joined): what ``gpus --nodes`` lists."""
    merged: dict[str, dict[str, Any]] = {}
    for node in nodes:
        row = merged.setdefault(
            node.node,
            {
                "node": node.node,
                "partitions": [],
                "state": node.state,
                "types": list(node.gpu_types),
                "total": node.gpus_total,
                "used": node.gpus_used,
                "free": max(node.gpus_total - node.gpus_used, 0) if node.usable else 0,
            },
        )
        row["partitions"].append(node.partition)
    return [merged[name] for name in sorted(merged)]
