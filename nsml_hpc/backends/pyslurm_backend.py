"""The ``pyslurm`` backend: Slurm's C API through pyslurm, on a login node.

Written against pyslurm 25.11's API (``pyslurm.JobSubmitDescription``, ``pyslurm.db.Jobs`` /
``pyslurm.db.JobFilter``, ``pyslurm.Jobs``, ``pyslurm.Job.cancel``, ``pyslurm.Partitions``,
``pyslurm.Nodes``), imported lazily. pyslurm X.Y only works with Slurm X.Y: before anything is
used, the installed pyslurm's version is compared with the running Slurm's, and a mismatch (or
a pyslurm that cannot load libslurm) is ONE clear error naming both versions and pointing at
the ``local`` backend, which works with every Slurm release.

Measured fact (docs/remote-clusters.md): PyPI only has pyslurm 25.11.x, which refuses to build
against anything but Slurm 25.11, so this backend has not run against a real Slurm here; the
backend contract tests run it wherever pyslurm imports.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from nsml_hpc.backends.base import ClusterProbe
from nsml_hpc.backends.files import LocalFiles, RunFiles
from nsml_hpc.config.identity import current_user
from nsml_hpc.errors import BackendError, ConfigError, SubmitRefused
from nsml_hpc.slurm.demand import Demand
from nsml_hpc.slurm.gres import gpu_count, gpu_types, gpus_in_gres, gres_text, parse_gres
from nsml_hpc.slurm.placement import StartEstimate
from nsml_hpc.slurm.records import JobRecord, clean_reason
from nsml_hpc.slurm.sinfo import NodeGpus, partition_summary
from nsml_hpc.slurm.states import session_state
from nsml_hpc.slurm.timefmt import format_duration
from nsml_hpc.slurm.user_queue import QueueJob
from nsml_hpc.slurm.version import major_minor, parse_slurm_version

VERSION_TIMEOUT = 30.0


def running_slurm_version() -> str | None:
    """The Slurm release of this machine's tools (``sinfo --version``), or None."""
    try:
        done = subprocess.run(
            ["sinfo", "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_slurm_version(done.stdout) if done.returncode == 0 else None


def installed_pyslurm_version() -> str | None:
    """pyslurm's version from its package metadata (readable even when libslurm is missing)."""
    try:
        return importlib.metadata.version("pyslurm")
    except importlib.metadata.PackageNotFoundError:
        return None


def version_problem(pyslurm_version: str | None, slurm_version: str | None) -> str | None:
    """Why this pyslurm cannot drive this Slurm, or None when the releases match (pure)."""
    if pyslurm_version is None:
        running = f"this cluster runs Slurm {slurm_version}" if slurm_version else "no Slurm found"
        return f"pyslurm is not installed ({running})"
    if slurm_version is None:
        return f"pyslurm {pyslurm_version} is installed, but no running Slurm was found"
    if major_minor(pyslurm_version) != major_minor(slurm_version):
        wanted = ".".join(str(part) for part in major_minor(pyslurm_version) or ())
        return (
            f"pyslurm {pyslurm_version} is built for Slurm {wanted}, but this cluster runs "
            f"Slurm {slurm_version}"
        )
    return None


def load_pyslurm(cluster: str) -> ModuleType:
    """Import pyslurm after checking it matches the running Slurm; ConfigError otherwise."""
    pyslurm_version = installed_pyslurm_version()
    slurm_version = running_slurm_version()
    advice = (
        f"use the local backend instead (nsml-hpc cluster add {cluster} --backend local "
        "--replace), which runs Slurm's own commands and works with every Slurm release"
    )
    problem = version_problem(pyslurm_version, slurm_version)
    if problem is not None:
        raise ConfigError(f"pyslurm backend of cluster {cluster}: {problem}; {advice}")
    try:
        return importlib.import_module("pyslurm")
    except (ImportError, OSError) as exc:
        raise ConfigError(
            f"pyslurm backend of cluster {cluster}: pyslurm {pyslurm_version} cannot load "
            f"libslurm for Slurm {slurm_version} ({exc}); {advice}"
        ) from exc


def pyslurm_matches() -> bool:
    """``auto``: is there a pyslurm whose release matches the running Slurm?"""
    return version_problem(installed_pyslurm_version(), running_slurm_version()) is None


def _time(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def record_from_job(job: Any) -> JobRecord:
    """A :class:`JobRecord` from a ``pyslurm.db.Job`` or ``pyslurm.Job`` (their shared
    attribute names: id, state, state_reason, exit_code, exit_code_signal, submit_time,
    start_time, end_time, elapsed_time; nodelist / allocated_nodes). Sync needs no GPU
    count from here (the session knows what it asked for)."""
    state_text = str(job.state)
    nodes = getattr(job, "nodelist", None) or getattr(job, "allocated_nodes", None)
    return JobRecord(
        job_id=str(job.id),
        state=session_state(state_text),
        slurm_state=state_text,
        reason=clean_reason(str(job.state_reason or "")),
        exit_code=job.exit_code,
        signal=job.exit_code_signal,
        submitted_at=_time(job.submit_time),
        started_at=_time(job.start_time),
        ended_at=_time(job.end_time),
        elapsed_s=_time(getattr(job, "elapsed_time", None)),
        node_list=str(nodes) if nodes else None,
    )


class PyslurmBackend:
    """Slurm through its C API (pyslurm); run directories on this machine's file system."""

    def __init__(self, cluster: str, module: ModuleType | None = None) -> None:
        self.cluster = cluster
        self.pyslurm = module or load_pyslurm(cluster)
        self.files: RunFiles = LocalFiles(cluster)

    @property
    def user(self) -> str:
        return current_user()

    def _error(self, action: str, exc: Exception) -> BackendError:
        return BackendError(f"pyslurm {action} failed on {self.cluster}: {exc}")

    def submit(self, script_path: str) -> str:
        description = self.pyslurm.JobSubmitDescription(script=str(script_path))
        try:
            description.load_sbatch_options()  # the #SBATCH lines nsml-hpc rendered
            job_id = description.submit()
        except self.pyslurm.RPCError as exc:
            raise SubmitRefused(f"Slurm refused the job: {exc}") from exc
        except (ValueError, TypeError) as exc:
            raise self._error("submit", exc) from exc
        return str(job_id)

    def query(self, job_ids: Sequence[str], since: float) -> list[JobRecord]:
        if not job_ids:
            return []
        db_filter = self.pyslurm.db.JobFilter(
            ids=[int(job_id) for job_id in job_ids], start_time=int(since)
        )
        try:
            jobs = self.pyslurm.db.Jobs.load(db_filter)
        except self.pyslurm.RPCError as exc:
            raise self._error("accounting query", exc) from exc
        return [record_from_job(job) for job in jobs.values()]

    def queue(self, job_ids: Sequence[str]) -> list[JobRecord]:
        if not job_ids:
            return []
        wanted = {int(job_id) for job_id in job_ids}
        try:
            jobs = self.pyslurm.Jobs.load()
        except self.pyslurm.RPCError as exc:
            raise self._error("queue query", exc) from exc
        return [record_from_job(job) for job in jobs.values() if job.id in wanted]

    def cancel(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:  # the C API cancels one job per call, as scancel does inside
            try:
                self.pyslurm.Job(int(job_id)).cancel()
            except self.pyslurm.RPCError as exc:
                raise self._error(f"cancel of job {job_id}", exc) from exc

    def _nodes(self) -> list[NodeGpus]:
        """Every node once per partition (``pyslurm.Nodes`` / ``pyslurm.Partitions``)."""
        nodes = self.pyslurm.Nodes.load()
        default = {
            part.name
            for part in self.pyslurm.Partitions.load().values()
            if getattr(part, "is_default", False)
        }
        result: list[NodeGpus] = []
        for node in nodes.values():
            configured = parse_gres(gres_text(getattr(node, "configured_gres", None)))
            gpus, types = gpu_count(configured) or 0, gpu_types(configured)
            used = gpus_in_gres(gres_text(getattr(node, "allocated_gres", None)))
            for partition in node.partitions or []:
                result.append(
                    NodeGpus(
                        node=node.name,
                        partition=partition,
                        is_default=partition in default,
                        state=str(node.state).lower(),
                        cpus_allocated=int(getattr(node, "allocated_cpus", 0) or 0),
                        cpus_total=int(getattr(node, "total_cpus", 0) or 0),
                        gpus_total=gpus,
                        gpus_used=min(used, gpus) if gpus else used,
                        gpu_types=types,
                    )
                )
        return result

    def probe(self) -> ClusterProbe:
        version = running_slurm_version()
        sacct_error: str | None = None
        try:
            self.pyslurm.db.Jobs.load(self.pyslurm.db.JobFilter(ids=[1]))
        except self.pyslurm.RPCError as exc:
            sacct_error = str(exc)
        try:
            nodes = self._nodes()
        except self.pyslurm.RPCError as exc:
            return ClusterProbe(version, sacct_error, [], str(exc))
        return ClusterProbe(version, sacct_error, partition_summary(nodes))

    def partitions(self) -> list[str]:
        try:
            return [str(name) for name in self.pyslurm.Partitions.load()]
        except self.pyslurm.RPCError as exc:
            raise self._error("partition list", exc) from exc

    def estimate_start(self, resource_args: list[str], partition: str) -> StartEstimate:
        """pyslurm has no ``sbatch --test-only``: ``--partition auto`` needs another backend."""
        raise BackendError(
            f"cluster {self.cluster}: --partition auto needs sbatch --test-only, which pyslurm "
            "does not offer; use the local or ssh backend, or name a partition"
        )

    def max_array_size(self) -> int:
        try:
            config = self.pyslurm.slurmctld.Config.load()
        except AttributeError as exc:
            raise BackendError(
                f"cluster {self.cluster}: this pyslurm cannot read MaxArraySize "
                "(no pyslurm.slurmctld.Config); sweeps need the local or ssh backend"
            ) from exc
        except self.pyslurm.RPCError as exc:
            raise self._error("config query", exc) from exc
        return int(config.max_array_size)

    def cluster_gpus(self) -> list[NodeGpus]:
        try:
            return self._nodes()
        except self.pyslurm.RPCError as exc:
            raise self._error("node query", exc) from exc

    def user_queue(self, user: str) -> list[QueueJob]:
        try:
            jobs = self.pyslurm.Jobs.load()
        except self.pyslurm.RPCError as exc:
            raise self._error("queue query", exc) from exc
        mine = [job for job in jobs.values() if getattr(job, "user_name", None) == user]
        mine.sort(key=lambda job: (str(job.state) != "RUNNING", -int(job.id)))
        return [
            QueueJob(
                job_id=str(job.id),
                state=str(job.state),
                reason=clean_reason(str(job.state_reason or "")),
                partition=str(getattr(job, "partition", "") or ""),
                gpus=gpus_in_gres(gres_text(getattr(job, "gres_per_node", None))),
                time_used=_duration(getattr(job, "run_time", None)),
                time_limit=_duration(_minutes(getattr(job, "time_limit", None))),
                nodes=int(getattr(job, "num_nodes", 0) or 0),
                submitted_at=_time(job.submit_time),
                start_at=_time(job.start_time),
                where=str(getattr(job, "nodelist", None) or job.state_reason or ""),
                name=str(getattr(job, "name", "") or ""),
            )
            for job in mine
        ]

    def pending_demand(self) -> dict[str, Demand]:
        try:
            jobs = self.pyslurm.Jobs.load()
        except self.pyslurm.RPCError as exc:
            raise self._error("queue query", exc) from exc
        found: dict[str, Demand] = {}
        for job in jobs.values():
            if str(job.state) != "PENDING":
                continue
            gpus = gpus_in_gres(gres_text(getattr(job, "gres_per_node", None)))
            nodes = int(getattr(job, "num_nodes", 1) or 1)
            for partition in str(getattr(job, "partition", "") or "").split(","):
                if partition:
                    old = found.get(partition, Demand())
                    found[partition] = Demand(old.jobs + 1, old.gpus + gpus * nodes)
        return found

    def close(self) -> None:
        """pyslurm keeps no connection of ours."""


def _minutes(value: Any) -> int | None:
    return int(value) * 60 if isinstance(value, int) and value > 0 else None


def _duration(seconds: Any) -> str:
    """Seconds as squeue prints them (``1-02:03:04``, ``2:03:04``, ``3:04``)."""
    if not isinstance(seconds, int | float) or seconds < 0:
        return ""
    return format_duration(seconds, pad_first=False)
