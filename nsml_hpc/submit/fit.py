"""Whether a cluster can hold a job at all, asked before anything is created.

Slurm refuses a job that asks for more nodes than its partition has, or for a GPU type no
node has, only once ``sbatch`` runs, with a terse message ("Node count specification invalid",
"Invalid generic resource (gres) specification"). For a multi-node job or a typed GPU request
this one ``sinfo`` call (the one behind ``nsml-hpc gpus``) says it first, in one line that
names the partition's nodes and GPU types, and nothing is written anywhere.
"""

from __future__ import annotations

from nsml_hpc.backends.base import SlurmBackend
from nsml_hpc.errors import SpecError
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.slurm.sinfo import NodeGpus


def needs_check(spec: SessionSpec) -> bool:
    return spec.resources.nodes > 1 or spec.resources.gpu_type is not None


def _partitions(spec: SessionSpec, nodes: list[NodeGpus]) -> list[str]:
    if spec.resources.partition:
        return spec.resources.partition.split(",")
    return sorted({node.partition for node in nodes if node.is_default})


def problem(spec: SessionSpec, nodes: list[NodeGpus], partition: str) -> str | None:
    """Why ``partition`` cannot run ``spec`` (None: it can, as far as sinfo tells)."""
    res = spec.resources
    members = [node for node in nodes if node.partition == partition]
    if not members:
        return None  # unknown to sinfo: sbatch names the problem itself
    names = ", ".join(sorted(node.node for node in members))
    if res.nodes > len(members):
        return f"--nodes {res.nodes}: partition {partition} has {len(members)} node(s) ({names})"
    if res.gpu_type is not None:
        typed = [node for node in members if res.gpu_type in node.gpu_types]
        if not typed:
            types = sorted({t for node in members for t in node.gpu_types})
            known = ", ".join(types) if types else "none: its GPUs have no type"
            return (
                f"--gpus {res.gpu_type}:{res.gpus}: no node of partition {partition} has GPUs "
                f"of type {res.gpu_type} (types there: {known})"
            )
        members = typed
    if res.gpus:
        enough = [node for node in members if node.gpus_total >= res.gpus]
        if len(enough) < res.nodes:
            return (
                f"--nodes {res.nodes} with {res.gpus} GPU(s) each: partition {partition} has "
                f"{len(enough)} node(s) with that many ({names}: "
                + ", ".join(f"{node.node} {node.gpus_total}" for node in members)
                + ")"
            )
    return None


def check_fits(spec: SessionSpec, backend: SlurmBackend) -> None:
    """SpecError (one line) when no partition the job may use can ever run it."""
    if not needs_check(spec):
        return
    nodes = backend.cluster_gpus()
    problems = [problem(spec, nodes, name) for name in _partitions(spec, nodes)]
    if problems and all(problems):
        raise SpecError("; ".join(p for p in problems if p))
