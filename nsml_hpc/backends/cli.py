"""The ``local`` backend: Slurm's own commands (sbatch, sacct, squeue, scancel, sinfo).

The commands run through a :class:`CommandRunner`, so the same parsing serves a local login
node and, with another runner and file access, a remote one (:mod:`nsml_hpc.backends.ssh`).
"""

from __future__ import annotations

from collections.abc import Sequence

from nsml_hpc.backends.base import ClusterProbe, CommandResult, CommandRunner
from nsml_hpc.backends.files import LocalFiles, RunFiles
from nsml_hpc.backends.remote_shell import EnvChanges
from nsml_hpc.backends.runner import LocalRunner
from nsml_hpc.backends.sbatch_env import variables_to_remove
from nsml_hpc.config.cluster_profiles import LOCAL
from nsml_hpc.config.identity import current_user
from nsml_hpc.errors import BackendError, SubmitRefused
from nsml_hpc.slurm.arrays import parse_max_array_size
from nsml_hpc.slurm.demand import Demand, demand_command, parse_demand
from nsml_hpc.slurm.placement import StartEstimate, parse_test_only
from nsml_hpc.slurm.records import JobRecord
from nsml_hpc.slurm.sacct import parse_sacct, sacct_command
from nsml_hpc.slurm.sinfo import NodeGpus, parse_sinfo, partition_summary, sinfo_command
from nsml_hpc.slurm.squeue import parse_squeue, squeue_command
from nsml_hpc.slurm.timefmt import TIME_FORMAT_ENV
from nsml_hpc.slurm.user_queue import QueueJob, parse_user_queue, user_queue_command
from nsml_hpc.slurm.version import VERSION_COMMAND, parse_slurm_version

SUBMIT_TIMEOUT = 60.0
QUERY_TIMEOUT = 60.0
NOT_FOUND_EXIT = 127  # what POSIX shells return for a command they cannot find
MAX_SCRIPT_BYTES = 1 << 20  # a rendered sbatch script is a few KiB
SACCT_PROBE = (
    "sacct",
    "--noheader",
    "--parsable2",
    "--allocations",
    "--format=JobID",
    "--starttime=now",
    "--endtime=now",
)


def slurm_error_line(result: CommandResult) -> str:
    """The most useful line of a failed Slurm command, without the ``sbatch: error:`` prefix."""
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()] or lines
    if not errors:
        return f"exit code {result.returncode}"
    messages: list[str] = []
    for line in errors:
        for prefix in (f"{result.argv[0]}: error: ", f"{result.argv[0]}: fatal: "):
            line = line.removeprefix(prefix)
        line = line.removeprefix("Batch job submission failed: ")
        if line.lower() not in (seen.lower() for seen in messages):
            messages.append(line)
    # The first line often names the bad value ("invalid partition specified: gpux").
    return "; ".join(messages)


def parse_job_id(stdout: str) -> str:
    """``sbatch --parsable`` prints ``36`` or, with a cluster, ``93;nsml``."""
    text = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    job_id = text.split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise BackendError(f"sbatch printed no job id (got {stdout.strip()!r})")
    return job_id


class CliBackend:
    """Slurm reached through its command-line tools."""

    def __init__(
        self,
        cluster: str = LOCAL,
        runner: CommandRunner | None = None,
        files: RunFiles | None = None,
        *,
        slurm_conf: str | None = None,
    ) -> None:
        self.cluster = cluster
        self.runner: CommandRunner = runner or LocalRunner()
        self.files: RunFiles = files or LocalFiles(cluster)
        # A cluster with its own slurm.conf (several clusters on one login node): every
        # Slurm command of this backend runs with SLURM_CONF set to it, and so do its jobs.
        self.slurm_env: dict[str, str | None] = {"SLURM_CONF": slurm_conf} if slurm_conf else {}

    @property
    def user(self) -> str:
        return current_user()

    def _run(self, argv: list[str], timeout: float, env: EnvChanges | None = None) -> CommandResult:
        """Run one Slurm command; times in its output are epoch seconds (TIME_FORMAT_ENV),
        whatever the zone of this machine or of the login node."""
        result = self.runner.run(
            argv, timeout=timeout, env={**TIME_FORMAT_ENV, **self.slurm_env, **(env or {})}
        )
        if result.returncode == NOT_FOUND_EXIT:
            raise BackendError(
                f"cluster {self.cluster}: {argv[0]} not found on the cluster's PATH "
                f"({slurm_error_line(result)}); set remote_path in the cluster profile"
            )
        return result

    def _where(self) -> str:
        return "" if self.cluster == LOCAL else f" on cluster {self.cluster}"

    def submit(self, script_path: str) -> str:
        """sbatch the script, without the ``SBATCH_*`` variables that would override its
        ``#SBATCH`` lines (:mod:`nsml_hpc.backends.sbatch_env`)."""
        script = self.files.read_bytes(str(script_path), MAX_SCRIPT_BYTES)
        if script is None:
            raise BackendError(f"cannot submit {script_path}{self._where()}: the script is gone")
        scrub = variables_to_remove(script.decode("utf-8", "replace"))
        result = self._run(
            ["sbatch", "--parsable", str(script_path)],
            SUBMIT_TIMEOUT,
            dict.fromkeys(scrub),
        )
        if result.returncode != 0:
            raise SubmitRefused(f"Slurm refused the job{self._where()}: {slurm_error_line(result)}")
        return parse_job_id(result.stdout)

    def query(self, job_ids: Sequence[str], since: float) -> list[JobRecord]:
        if not job_ids:
            return []
        result = self._run(sacct_command(list(job_ids), since), QUERY_TIMEOUT)
        if result.returncode != 0:
            raise BackendError(f"sacct failed on {self.cluster}: {slurm_error_line(result)}")
        try:
            return parse_sacct(result.stdout)
        except ValueError as exc:
            raise BackendError(f"sacct on {self.cluster}: {exc}") from exc

    def queue(self, job_ids: Sequence[str]) -> list[JobRecord]:
        if not job_ids:
            return []
        result = self._run(squeue_command(list(job_ids)), QUERY_TIMEOUT)
        if result.returncode != 0:
            if "invalid job id" in result.stderr.lower():
                return []  # none of them is known to slurmctld any more
            raise BackendError(f"squeue failed on {self.cluster}: {slurm_error_line(result)}")
        return parse_squeue(result.stdout)

    def partitions(self) -> list[str]:
        result = self._run(["sinfo", "--noheader", "--format=%R"], QUERY_TIMEOUT)
        if result.returncode != 0:
            raise BackendError(f"sinfo failed on {self.cluster}: {slurm_error_line(result)}")
        return list(
            dict.fromkeys(line.strip() for line in result.stdout.splitlines() if line.strip())
        )

    def estimate_start(self, resource_args: list[str], partition: str) -> StartEstimate:
        argv = ["sbatch", "--test-only", f"--partition={partition}", *resource_args, "--wrap=true"]
        result = self._run(argv, QUERY_TIMEOUT)
        return parse_test_only(partition, result.stderr + result.stdout)

    def max_array_size(self) -> int:
        result = self._run(["scontrol", "show", "config"], QUERY_TIMEOUT)
        if result.returncode != 0:
            raise BackendError(
                f"scontrol show config failed on {self.cluster}: {slurm_error_line(result)}"
            )
        return parse_max_array_size(result.stdout)

    def cancel(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        result = self._run(["scancel", *job_ids], QUERY_TIMEOUT)
        if result.returncode != 0:
            raise BackendError(f"scancel failed on {self.cluster}: {slurm_error_line(result)}")

    def probe(self) -> ClusterProbe:
        """Three commands: ``sinfo --version``, an empty sacct query, one ``sinfo --Node``."""
        version = self._run(list(VERSION_COMMAND), QUERY_TIMEOUT)
        if version.returncode != 0:
            raise BackendError(
                f"sinfo --version failed on {self.cluster}: {slurm_error_line(version)}"
            )
        sacct = self._run(list(SACCT_PROBE), QUERY_TIMEOUT)
        nodes = self._run(sinfo_command(), QUERY_TIMEOUT)
        return ClusterProbe(
            slurm_version=parse_slurm_version(version.stdout),
            sacct_error=None if sacct.returncode == 0 else slurm_error_line(sacct),
            partitions=partition_summary(parse_sinfo(nodes.stdout))
            if nodes.returncode == 0
            else [],
            sinfo_error=None if nodes.returncode == 0 else slurm_error_line(nodes),
        )

    def close(self) -> None:
        """Nothing to release: every command is its own process."""

    def cluster_gpus(self) -> list[NodeGpus]:
        result = self._run(sinfo_command(), QUERY_TIMEOUT)
        if result.returncode != 0:
            raise BackendError(f"sinfo failed on {self.cluster}: {slurm_error_line(result)}")
        return parse_sinfo(result.stdout)

    def pending_demand(self) -> dict[str, Demand]:
        result = self._run(demand_command(), QUERY_TIMEOUT)
        if result.returncode != 0:
            raise BackendError(f"squeue failed on {self.cluster}: {slurm_error_line(result)}")
        return parse_demand(result.stdout)

    def user_queue(self, user: str) -> list[QueueJob]:
        result = self._run(user_queue_command(user), QUERY_TIMEOUT)
        if result.returncode != 0:
            raise BackendError(f"squeue failed on {self.cluster}: {slurm_error_line(result)}")
        return parse_user_queue(result.stdout)
