"""The ``pyslurm`` backend: Slurm's C API through pyslurm, on a login node.

Runs against the sandbox's Slurm 22.05 through pyslurm 22.5.3 (``../shared/vendor/pyslurm``,
installed by scripts/setup.sh) and keeps to what pyslurm 25.11 offers too; where the two
differ, :mod:`nsml_hpc.backends.pyslurm_compat` decides. Loading and the version check are in
:mod:`nsml_hpc.backends.pyslurm_loader`, failures become one line in
:mod:`nsml_hpc.backends.pyslurm_errors`.

One RPC per backend method, as with the commands: ``query`` is ONE ``db.Jobs.load`` for all
jobs of a sync, ``queue``/``user_queue``/``pending_demand`` ONE ``Jobs.load``. Three calls go
to Slurm's commands instead (the login node has them; see docs/remote-clusters.md):
``estimate_start`` (pyslurm has no ``sbatch --test-only``), the cancel of array tasks
(``8_3``: pyslurm cancels by numeric job id only) and, for a pyslurm that cannot read it,
MaxArraySize.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from nsml_hpc.backends.base import ClusterProbe
from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.backends.files import LocalFiles, RunFiles
from nsml_hpc.backends.pyslurm_compat import NodeView, PyslurmApi
from nsml_hpc.backends.pyslurm_errors import PYSLURM_LOCK, libslurm_stderr, pyslurm_error
from nsml_hpc.backends.pyslurm_loader import (
    installed_pyslurm_version,
    load_pyslurm,
    pyslurm_matches,
    running_slurm_version,
    version_problem,
)
from nsml_hpc.backends.pyslurm_records import display_id, job_ids, records_from_job, wanted_records
from nsml_hpc.backends.pyslurm_submit import sbatch_environment, submit_fields
from nsml_hpc.config.identity import current_user
from nsml_hpc.errors import BackendError
from nsml_hpc.slurm.demand import Demand
from nsml_hpc.slurm.gres import gpu_count, gpu_types, gpus_in_gres, gres_text, parse_gres
from nsml_hpc.slurm.placement import StartEstimate
from nsml_hpc.slurm.records import JobRecord, clean_reason
from nsml_hpc.slurm.sinfo import NodeGpus, partition_summary
from nsml_hpc.slurm.states import TERMINAL_STATES, SessionState, session_state
from nsml_hpc.slurm.timefmt import format_duration
from nsml_hpc.slurm.user_queue import QueueJob

__all__ = [
    "PyslurmBackend",
    "installed_pyslurm_version",
    "pyslurm_matches",
    "running_slurm_version",
    "version_problem",
]

T = TypeVar("T")
log = logging.getLogger(__name__)


class PyslurmBackend:
    """Slurm through its C API (pyslurm); run directories on this machine's file system."""

    def __init__(self, cluster: str, api: PyslurmApi | None = None) -> None:
        self.cluster = cluster
        if api is None:
            module, version = load_pyslurm(cluster)
            api = PyslurmApi(module, version)
        self.api = api
        self.files: RunFiles = LocalFiles(cluster)
        self.commands = CliBackend(cluster, files=self.files)  # the three calls pyslurm lacks

    @property
    def user(self) -> str:
        return current_user()

    def _call(self, action: str, call: Callable[[], T], *, submitting: bool = False) -> T:
        """One pyslurm call: serialized, libslurm's stderr caught, a failure as one line
        (what libslurm printed on a success goes to the log, not onto the screen)."""
        with PYSLURM_LOCK, libslurm_stderr() as logged:
            try:
                result = call()
            except self.api.errors as exc:
                failure: Exception | None = exc
            else:
                failure = None
        if failure is not None:
            raise pyslurm_error(
                self.cluster, action, failure, logged.text, submitting=submitting
            ) from failure
        if logged.text.strip():
            log.warning("libslurm during pyslurm %s: %s", action, logged.text.strip())
        return result

    def submit(self, script_path: str) -> str:
        try:
            script = Path(script_path).read_text(encoding="utf-8")
        except OSError as exc:
            raise BackendError(f"cannot read {script_path}: {exc.strerror}") from exc
        fields = submit_fields(str(script_path), script)
        fields["environment"] = sbatch_environment(
            os.environ,
            fields.get("name"),
            _submit_dir(),
            socket.gethostname(),
            os.getpriority(os.PRIO_PROCESS, 0),
        )
        return str(self._call("submit", lambda: self.api.submit(fields), submitting=True))

    def query(self, job_ids: Sequence[str], since: float) -> list[JobRecord]:
        """ONE ``db.Jobs.load``; array tasks are asked for by their array's id (as sync does)."""
        if not job_ids:
            return []
        ids = sorted({int(job_id.split("_", 1)[0]) for job_id in job_ids})
        jobs = self._call("accounting query", lambda: self.api.accounting_jobs(ids, int(since)))
        found: dict[str, JobRecord] = {}
        for job in jobs:
            for record in records_from_job(job, accounting=True):
                found[record.job_id] = record
        return list(found.values())

    def queue(self, job_ids: Sequence[str]) -> list[JobRecord]:
        if not job_ids:
            return []
        jobs = self._call("queue query", self.api.queue_jobs)
        return wanted_records(jobs, set(job_ids))

    def cancel(self, job_ids: Sequence[str]) -> None:
        tasks = [job_id for job_id in job_ids if not job_id.isdigit()]
        for job_id in job_ids:  # the C API cancels one job per call, as scancel does inside
            if job_id.isdigit():
                self._call(f"cancel of job {job_id}", partial(self.api.cancel, int(job_id)))
        if tasks:
            self.commands.cancel(tasks)

    def _nodes(self) -> list[NodeGpus]:
        """Every node once per partition."""
        partitions = self.api.partitions()
        nodes: list[NodeView] = self.api.nodes()
        default = {name for name, is_default in partitions if is_default}
        result: list[NodeGpus] = []
        for node in nodes:
            configured = parse_gres(node.gres)
            gpus, types = gpu_count(configured) or 0, gpu_types(configured)
            used = gpus_in_gres(node.gres_used)
            for partition in node.partitions:
                result.append(
                    NodeGpus(
                        node=node.name,
                        partition=partition,
                        is_default=partition in default,
                        state=node.state,
                        cpus_allocated=node.cpus_allocated,
                        cpus_total=node.cpus_total,
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
            self._call("accounting query", lambda: self.api.accounting_jobs([1], 0))
        except BackendError as exc:
            sacct_error = str(exc)
        try:
            nodes = self._call("node query", self._nodes)
        except BackendError as exc:
            return ClusterProbe(version, sacct_error, [], str(exc))
        return ClusterProbe(version, sacct_error, partition_summary(nodes))

    def partitions(self) -> list[str]:
        return [name for name, _ in self._call("partition list", self.api.partitions)]

    def estimate_start(self, resource_args: list[str], partition: str) -> StartEstimate:
        """pyslurm has no ``sbatch --test-only``: Slurm's own command answers."""
        return self.commands.estimate_start(resource_args, partition)

    def max_array_size(self) -> int:
        size = self._call("config query", self.api.max_array_size)
        return self.commands.max_array_size() if size is None else size

    def cluster_gpus(self) -> list[NodeGpus]:
        return self._call("node query", self._nodes)

    def user_queue(self, user: str) -> list[QueueJob]:
        """What ``squeue --user`` lists: the user's jobs that have not ended (slurmctld keeps
        ended ones for MinJobAge), suspended and running first, then by job id."""
        jobs = self._call("queue query", self.api.queue_jobs)
        mine = [job for job in jobs if getattr(job, "user_name", None) == user and _not_ended(job)]
        mine.sort(key=lambda job: (_STATE_RANK.get(str(job.state), 2), int(job.id)))
        return [_queue_job(job) for job in mine]

    def pending_demand(self) -> dict[str, Demand]:
        """Pending jobs per partition; an array's waiting tasks count one each (squeue -r)."""
        jobs = self._call("queue query", self.api.queue_jobs)
        found: dict[str, Demand] = {}
        for job in jobs:
            if str(job.state) != "PENDING":
                continue
            count = len(job_ids(job))
            gpus = gpus_in_gres(gres_text(getattr(job, "gres_per_node", None)))
            nodes = int(getattr(job, "num_nodes", 1) or 1)
            for partition in str(getattr(job, "partition", "") or "").split(","):
                if partition:
                    old = found.get(partition, Demand())
                    found[partition] = Demand(old.jobs + count, old.gpus + count * gpus * nodes)
        return found

    def close(self) -> None:
        """pyslurm keeps no connection of ours (each call opens and closes its own)."""


# squeue --sort=-t: by job state, highest first (SUSPENDED 2, RUNNING 1, PENDING 0).
_STATE_RANK = {"SUSPENDED": 0, "RUNNING": 1, "COMPLETING": 1, "CONFIGURING": 1}


def _not_ended(job: Any) -> bool:
    try:
        state = session_state(str(job.state))
    except ValueError:
        return True
    return state not in TERMINAL_STATES and state != SessionState.PREEMPTED


def _queue_job(job: Any) -> QueueJob:
    """One line of ``squeue --user`` (user_queue_command's fields) from a ``pyslurm.Job``."""
    state = str(job.state)
    reason = clean_reason(str(job.state_reason or ""))
    limit = getattr(job, "time_limit", None)
    nodes = getattr(job, "allocated_nodes", None)
    return QueueJob(
        job_id=display_id(job),
        state=state,
        reason=reason,
        partition=str(getattr(job, "partition", "") or ""),
        gpus=gpus_in_gres(gres_text(getattr(job, "gres_per_node", None))),
        time_used=_duration(getattr(job, "run_time", None)),
        time_limit="UNLIMITED" if limit is None else _duration(_minutes(limit)),
        nodes=int(getattr(job, "num_nodes", 0) or 0),
        submitted_at=_time(job.submit_time),
        start_at=_time(job.start_time),
        where=f"({reason or 'None'})" if state == "PENDING" or not nodes else str(nodes),
        name=str(getattr(job, "name", "") or ""),
    )


def _submit_dir() -> str:
    """sbatch's SLURM_SUBMIT_DIR: the working directory (``/`` if it was removed)."""
    try:
        return str(Path.cwd())
    except OSError:
        return "/"


def _time(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _minutes(value: Any) -> int | None:
    return int(value) * 60 if isinstance(value, int) and value > 0 else None


def _duration(seconds: Any) -> str:
    """Seconds as squeue prints them (``1-02:03:04``, ``2:03:04``, ``3:04``)."""
    if not isinstance(seconds, int | float) or seconds < 0:
        return ""
    return format_duration(seconds, pad_first=False)
