"""Pending GPU demand per partition: ONE squeue call over every user's pending jobs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DEMAND_FORMAT = "%P|%b|%D"


def demand_command() -> list[str]:
    return ["squeue", "--noheader", "--states=PENDING", "--array", f"--format={DEMAND_FORMAT}"]


@dataclass(frozen=True)
class Demand:
    jobs: int = 0
    gpus: int = 0


def _gpus_per_node(gres: str) -> int:
    """``gres:gpu:2`` / ``gres/gpu:a100:2`` / ``gpu:2`` / ``N/A`` -> GPUs per node."""
    total = 0
    for item in gres.split(","):
        parts = item.replace("/", ":").split(":")
        if "gpu" in parts and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def parse_demand(text: str) -> dict[str, Demand]:
    """Pending jobs and the GPUs they ask for, per partition (a job pending in several
    partitions counts in each)."""
    found: dict[str, Demand] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 3 or not fields[2].strip().isdigit():
            continue
        partitions, gres, nodes = fields
        gpus = _gpus_per_node(gres) * int(nodes)
        for partition in _split(partitions.split(",")):
            old = found.get(partition, Demand())
            found[partition] = Demand(old.jobs + 1, old.gpus + gpus)
    return found


def _split(names: Iterable[str]) -> list[str]:
    return [name.strip() for name in names if name.strip()]
