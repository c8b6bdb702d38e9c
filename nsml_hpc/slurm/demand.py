"""Pending GPU demand per partition: ONE squeue call over every user's pending jobs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nsml_hpc.slurm.gres import gpus_in_gres

DEMAND_FORMAT = "%P|%b|%D"


def demand_command() -> list[str]:
    return ["squeue", "--noheader", "--states=PENDING", "--array", f"--format={DEMAND_FORMAT}"]


@dataclass(frozen=True)
class Demand:
    jobs: int = 0
    gpus: int = 0


def parse_demand(text: str) -> dict[str, Demand]:
    """Pending jobs and the GPUs they ask for, per partition (a job pending in several
    partitions counts in each)."""
    found: dict[str, Demand] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 3 or not fields[2].strip().isdigit():
            continue
        partitions, gres, nodes = fields
        gpus = gpus_in_gres(gres) * int(nodes)  # %b is per node
        for partition in _split(partitions.split(",")):
            old = found.get(partition, Demand())
            found[partition] = Demand(old.jobs + 1, old.gpus + gpus)
    return found


def _split(names: Iterable[str]) -> list[str]:
    return [name.strip() for name in names if name.strip()]
