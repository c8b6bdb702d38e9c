"""The backend seam: what nsml-hpc needs from a Slurm cluster, and nothing more.

Every method is ONE Slurm command (or RPC) for any number of jobs: the sync layer never calls
a backend in a loop per job. A backend that holds a connection opens it on first use and keeps
it for everything until :meth:`SlurmBackend.close` (one connection per command or sync).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from nsml_hpc.backends.files import RunFiles
from nsml_hpc.backends.remote_shell import EnvChanges
from nsml_hpc.slurm.demand import Demand
from nsml_hpc.slurm.placement import StartEstimate
from nsml_hpc.slurm.records import JobRecord
from nsml_hpc.slurm.sinfo import NodeGpus, PartitionGpus
from nsml_hpc.slurm.user_queue import QueueJob

# Asks the user for the passphrase of an encrypted key (CLI: getpass on a terminal). What it
# returns is kept in memory for the connection only, never written anywhere.
PassphrasePrompt = Callable[[str], str | None]


@dataclass(frozen=True)
class CommandResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


class CommandRunner(Protocol):
    """Runs one command (locally, or on a login node over SSH) and returns what it printed."""

    def run(
        self, argv: list[str], *, timeout: float, env: EnvChanges | None = None
    ) -> CommandResult:
        """``env``: variables to set (a value) or remove (None) for this command only."""
        ...


@dataclass(frozen=True)
class ClusterProbe:
    """What ``nsml-hpc cluster test`` reports about a cluster's Slurm."""

    slurm_version: str | None
    sacct_error: str | None  # None: sacct answers
    partitions: list[PartitionGpus] = field(default_factory=list)
    sinfo_error: str | None = None


class SlurmBackend(Protocol):
    """One cluster, reached one way (local commands, SSH, pyslurm)."""

    cluster: str
    files: RunFiles  # the cluster's file system, where run directories live

    @property
    def user(self) -> str:
        """The cluster account jobs run as (the ``<user>`` of run directory paths)."""
        ...

    def submit(self, script_path: str) -> str:
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

    def probe(self) -> ClusterProbe:
        """The Slurm version, whether accounting answers, and GPUs per partition."""
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

    def close(self) -> None:
        """Release the connection, if any (idempotent)."""
        ...
