"""``--partition auto``: NSML's automatic GPU allocation, done by asking Slurm.

One ``sinfo`` lists the partitions, then one ``sbatch --test-only`` per partition asks when a
job with these resources would start there; the earliest wins. Nothing is submitted while
asking, and the scheduler is not touched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from nsml_hpc.backends.base import SlurmBackend
from nsml_hpc.errors import SubmitRefused
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.slurm.placement import StartEstimate, choose_partition, explain
from nsml_hpc.submit.render import directive_args, resource_directives

AUTO = "auto"


@dataclass(frozen=True)
class Placement:
    spec: SessionSpec
    choice: StartEstimate
    explanation: str


def place(spec: SessionSpec, backend: SlurmBackend, now: float | None = None) -> Placement:
    """``spec`` with its partition chosen; :class:`SubmitRefused` if no partition can run it."""
    now = time.time() if now is None else now
    unplaced = replace(spec, resources=replace(spec.resources, partition=None))
    args = directive_args(resource_directives(unplaced))
    estimates = [backend.estimate_start(args, name) for name in backend.partitions()]
    choice = choose_partition(estimates)
    if choice is None:
        reasons = "; ".join(f"{e.partition}: {e.refusal}" for e in estimates) or "no partitions"
        raise SubmitRefused(f"no partition can run this job ({reasons})")
    placed = replace(spec, resources=replace(spec.resources, partition=choice.partition))
    return Placement(spec=placed, choice=choice, explanation=explain(choice, estimates, now))
