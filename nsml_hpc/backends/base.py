"""The backend seam: what nsml-hpc needs from a Slurm cluster, and nothing more.

Every method is ONE Slurm command for any number of jobs: the sync layer never calls a backend
in a loop per job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from nsml_hpc.backends.files import RunFiles
from nsml_hpc.slurm.demand import Demand
from nsml_hpc.slurm.placement import StartEstimate
from nsml_hpc.slurm.records import JobRecord
from nsml_hpc.slurm.sinfo import NodeGpus
from nsml_hpc.slurm.user_queue import QueueJob


@dataclass(frozen=True)
class CommandResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


class CommandRunner(Protocol):
    """Runs one command (locally, or on a login node over SSH) and returns what it printed."""

    def run(self, argv: list[str], *, timeout: float) -> CommandResult: ...


class SlurmBackend(Protocol):
    """One cluster, reached one way (local commands, SSH, pyslurm)."""

    cluster: str
    files: RunFiles  # the cluster's file system, where run directories live

    def submit(self, script_path: Path) -> str:
        """Submit the sbatch script at ``script_path`` (on the cluster); return the job id."""
        ...

    def query(self, job_ids: Sequence[str], since: float) -> list[JobRecord]:
        """Accounting records of ``job_ids`` (one sacct call), submitted at or after ``since``."""
        ...

    def queue(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """Queue records of ``job_ids`` that slurmctld still knows (one squeue call)."""
        ...

    def cancel(self, job_ids: Sequence[str]) -> None:
        """Cancel ``job_ids`` (one scancel call)."""
        ...

    def partitions(self) -> list[str]:
        """Names of the cluster's partitions (one ``sinfo`` call)."""
        ...

    def estimate_start(self, resource_args: list[str], partition: str) -> StartEstimate:
        """When a job with ``resource_args`` would start in ``partition``
        (``sbatch --test-only``; nothing is submitted)."""
        ...

    def max_array_size(self) -> int:
        """The cluster's MaxArraySize (one ``scontrol show config`` call)."""
        ...

    def cluster_gpus(self) -> list[NodeGpus]:
        """GPUs (configured and in use) of every node in every partition (one sinfo call)."""
        ...

    def pending_demand(self) -> dict[str, Demand]:
        """Pending jobs and GPUs they ask for, per partition, all users (one squeue call)."""
        ...

    def user_queue(self, user: str) -> list[QueueJob]:
        """Every queued or running job of ``user`` (one squeue call)."""
        ...
