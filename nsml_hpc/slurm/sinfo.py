"""sinfo: the Slurm version and GPUs per partition, from ONE ``sinfo --Node`` call (pure parsers).

``sinfo --noheader --Node --Format=Partition:|,NodeHost:|,StateLong:|,Gres:|,GresUsed:|`` prints
one line per (node, partition), fields ended by ``|`` and never truncated (an empty width)::

    debug*|vm|mixed|gpu:4|gpu:2|
    gpu|n01|allocated|gpu:a100:4(S:0-1)|gpu:a100:4(IDX:0-3)|

A ``*`` after the partition marks the default one. GRES lists are comma-separated, and the
``(IDX:0,2-3)`` annotations may hold commas of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SINFO_FORMAT = "Partition:|,NodeHost:|,StateLong:|,Gres:|,GresUsed:|"
SINFO_COMMAND = ("sinfo", "--noheader", "--Node", f"--Format={SINFO_FORMAT}")
VERSION_COMMAND = ("sinfo", "--version")
_FIELDS = 5
_VERSION = re.compile(r"\b(\d+)\.(\d+)(?:\.(\d+))?\b")
# Node states in which a node takes jobs (sinfo adds a suffix such as '*' when not responding).
_USABLE_STATES = {"idle", "mixed", "allocated", "completing", "planned"}
_STATE_FLAGS = "*~#!%$@^-+"


@dataclass(frozen=True)
class NodeLine:
    """One node in one partition, as sinfo reported it."""

    partition: str
    default: bool
    node: str
    state: str  # without sinfo's suffix flags
    responding: bool  # sinfo appends '*' to the state of a node that does not respond
    gpus: int
    gpus_used: int

    @property
    def usable(self) -> bool:
        """The node takes new jobs now."""
        return self.responding and self.state in _USABLE_STATES


@dataclass(frozen=True)
class PartitionGpus:
    """GPUs of one partition: on all its nodes, and free on nodes that take jobs."""

    name: str
    default: bool
    nodes: int
    usable_nodes: int
    gpus: int
    free_gpus: int


def parse_slurm_version(text: str) -> str | None:
    """``slurm-wlm 22.05.8`` / ``slurm 24.11.1`` -> ``22.05.8`` / ``24.11.1``; None if absent."""
    match = _VERSION.search(text)
    if match is None:
        return None
    return ".".join(part for part in match.groups() if part is not None)


def major_minor(version: str) -> tuple[int, int] | None:
    """``22.05.8`` -> ``(22, 5)``; pyslurm's ``25.11.2`` -> ``(25, 11)``."""
    match = _VERSION.search(version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _split_gres(text: str) -> list[str]:
    """Split a GRES list on the commas that are not inside parentheses."""
    items: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def gpu_count(gres: str) -> int:
    """GPUs in a GRES list: ``gpu:4`` -> 4, ``gpu:a100:2(IDX:0-1),gpu:v100:1`` -> 3,
    ``(null)`` / ``N/A`` / ``shard:8`` -> 0."""
    total = 0
    for item in _split_gres(gres):
        parts = item.split("(", 1)[0].split(":")
        if parts[0] != "gpu":
            continue
        if len(parts) == 1:
            total += 1
        elif parts[-1].isdigit() and parts[-1].isascii():
            total += int(parts[-1])
    return total


def parse_sinfo_nodes(text: str) -> list[NodeLine]:
    """Node lines of ``SINFO_COMMAND``'s output; lines of other shapes (warnings) are skipped."""
    lines: list[NodeLine] = []
    for raw in text.splitlines():
        fields = raw.strip().split("|")
        if fields and fields[-1] == "":
            fields = fields[:-1]
        if len(fields) != _FIELDS or not fields[0] or not fields[1]:
            continue
        partition, node, state_text, gres, used = (field.strip() for field in fields)
        state = state_text.lower().rstrip(_STATE_FLAGS)
        lines.append(
            NodeLine(
                partition=partition.rstrip("*"),
                default=partition.endswith("*"),
                node=node,
                state=state,
                responding="*" not in state_text[len(state) :],
                gpus=gpu_count(gres),
                gpus_used=gpu_count(used),
            )
        )
    return lines


def partitions_gpus(lines: list[NodeLine]) -> list[PartitionGpus]:
    """GPUs per partition, in the order sinfo listed the partitions."""
    order: list[str] = []
    groups: dict[str, list[NodeLine]] = {}
    for line in lines:
        if line.partition not in groups:
            order.append(line.partition)
            groups[line.partition] = []
        groups[line.partition].append(line)
    result: list[PartitionGpus] = []
    for name in order:
        nodes = groups[name]
        usable = [node for node in nodes if node.usable]
        result.append(
            PartitionGpus(
                name=name,
                default=any(node.default for node in nodes),
                nodes=len(nodes),
                usable_nodes=len(usable),
                gpus=sum(node.gpus for node in nodes),
                free_gpus=sum(max(0, node.gpus - node.gpus_used) for node in usable),
            )
        )
    return result
