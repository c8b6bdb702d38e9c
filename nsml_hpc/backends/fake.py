"""A Slurm cluster in memory: the backend seam's own fake, shipped with it (as httpx ships
``MockTransport``) so that every test above the seam uses one fake that the type checker holds
to :class:`~nsml_hpc.backends.base.SlurmBackend`.

Above the seam only: sync's decisions, the CLI and the TUI. Whether a Slurm path works (what
sbatch, sacct and squeue really print) is tested against the real Slurm sandbox.

The fake answers the way the real backends do, as measured on the sandbox:

* :meth:`FakeBackend.submit` reads the script through ``files`` and takes its ``#SBATCH``
  lines: ``--array`` makes tasks ``<id>_<k>``, ``--partition`` (else the default one) must
  exist, ``--gres=gpu:N``/``--gpus``, ``--job-name``, ``--time``. A new job is PENDING.
* :meth:`~FakeBackend.query` is sacct: jobs that were not over before ``since``, asked by
  job id or by array id (every task), minus jobs slurmdbd has not recorded yet
  (``FakeJob.in_accounting``); a pending job's reason is None there, as slurmdbd keeps it.
* :meth:`~FakeBackend.queue` is ``squeue --states=all``: what slurmctld still knows (jobs not
  ended, and ended ones for ``min_job_age`` seconds), with the pending reason.
* :meth:`~FakeBackend.cancel` ends every job or task named, unknown ids silently (scancel
  prints nothing and exits 0 for them).
* ``cluster_gpus``, ``probe`` and ``partitions`` report ``nodes`` as given (jobs do not
  occupy them); ``user_queue`` and ``pending_demand`` are computed from the jobs.

Nothing happens by itself: a job changes state when the test says so, with
:meth:`~FakeBackend.apply` (now), :meth:`~FakeBackend.script` + :meth:`~FakeBackend.advance`
(scripted transitions, one step per advance), :meth:`~FakeBackend.requeue` or
:meth:`~FakeBackend.forget`. Every Protocol call is logged in ``calls`` (so a test counts
queries: one sacct per cluster per sync) and :meth:`~FakeBackend.fail` makes a method raise.
The run directories live in ``files``: :class:`~nsml_hpc.backends.fake_files.MemoryFiles` by
default, or :class:`~nsml_hpc.backends.files.LocalFiles` for a test over a temporary folder.
"""

from __future__ import annotations

import posixpath
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from nsml_hpc.backends.base import ClusterProbe, SlurmBackend
from nsml_hpc.backends.fake_files import MemoryFiles
from nsml_hpc.backends.files import RunFiles
from nsml_hpc.config.cluster_profiles import LOCAL
from nsml_hpc.config.identity import current_user
from nsml_hpc.errors import NsmlError, SubmitRefused
from nsml_hpc.job.duration import parse_duration
from nsml_hpc.slurm.arrays import DEFAULT_MAX_ARRAY_SIZE
from nsml_hpc.slurm.demand import Demand
from nsml_hpc.slurm.gres import gpus_in_gres
from nsml_hpc.slurm.placement import StartEstimate
from nsml_hpc.slurm.records import JobRecord
from nsml_hpc.slurm.sinfo import NodeGpus, partition_summary
from nsml_hpc.slurm.states import TERMINAL_STATES, SessionState, session_state
from nsml_hpc.slurm.timefmt import format_duration
from nsml_hpc.slurm.user_queue import QueueJob

FIRST_JOB_ID = 1000
MIN_JOB_AGE = 300.0  # seconds slurmctld keeps an ended job (the sandbox's MinJobAge)
SCRIPT_LIMIT = 1024 * 1024
# The sandbox's one node: 2 CPUs, 4 GPUs, in the default partition "debug".
DEFAULT_NODES = (NodeGpus("vm", "debug", True, "idle", 0, 2, 4, 0),)
NODE_REFUSAL = "Requested node configuration is not available"
PARTITION_REFUSAL = "Batch job submission failed: Invalid partition name specified"
_STARTED = frozenset({SessionState.RUNNING, SessionState.SUSPENDED})
_ENDED = TERMINAL_STATES | {SessionState.PREEMPTED, SessionState.REQUEUED}


@dataclass(frozen=True)
class Step:
    """A state a job moves to, as Slurm prints it (``RUNNING``, ``CANCELLED by 0``...).

    Moving to a running state starts the job (on ``node_list``, else the first node of its
    partition); to an end state ends it with ``exit_code`` (default 1 for FAILED, else 0)
    and ``signal``; back to PENDING after it ran is a requeue (times and node cleared).
    """

    slurm_state: str
    reason: str | None = None
    exit_code: int | None = None
    signal: int = 0
    node_list: str | None = None

    def __post_init__(self) -> None:
        session_state(self.slurm_state)  # an unknown state is a mistake in the test

    @property
    def state(self) -> SessionState:
        return session_state(self.slurm_state)


@dataclass
class FakeJob:
    """One job, or one task of an array (``job_id`` ``392_4``, ``array_id`` ``392``)."""

    job_id: str
    slurm_state: str = "PENDING"
    reason: str | None = "Priority"
    user: str = ""  # "" takes the backend's user when the job is added
    name: str = ""
    partition: str = ""  # "" takes the default partition when the job is added
    gpus: int = 0
    nodes: int = 1
    time_limit: float | None = None  # seconds; None: UNLIMITED
    submitted_at: float | None = None  # None takes the clock when the job is added
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int = 0
    signal: int = 0
    node_list: str | None = None
    start_at: float | None = None  # when a pending job is expected to start (squeue %S)
    script_path: str | None = None
    array_id: str | None = None
    in_accounting: bool = True  # False: slurmdbd has not recorded it yet (sacct lags)
    # False: slurmdbd has the job without its partition and time limit yet (sacct's Partition
    # is empty, as the sandbox shows for a job that just started)
    allocation_recorded: bool = True
    restarts: int = 0
    upcoming: list[Step] = field(default_factory=list)  # scripted steps, see advance()

    @property
    def state(self) -> SessionState:
        return session_state(self.slurm_state)

    def accounting_record(self, now: float) -> JobRecord:
        """What sacct says about the job (parsed)."""
        started = self.started_at is not None
        elapsed = (self.ended_at or now) - self.started_at if self.started_at is not None else 0.0
        return JobRecord(
            job_id=self.job_id,
            state=self.state,
            slurm_state=self.slurm_state,
            reason=None,
            exit_code=self.exit_code,
            signal=self.signal,
            submitted_at=self.submitted_at,
            started_at=self.started_at,
            ended_at=self.ended_at,
            elapsed_s=float(int(elapsed)),
            gpus=self.gpus if started and self.gpus else None,
            node_list=self.node_list if started else None,
            allocation_complete=self.allocation_recorded,
        )

    def queue_record(self) -> JobRecord:
        """What ``squeue --states=all`` says about the job (parsed)."""
        return JobRecord(
            job_id=self.job_id,
            state=self.state,
            slurm_state=self.slurm_state,
            reason=self.reason,
            gpus=self.gpus or None,
            node_list=self.node_list,
        )


@dataclass(frozen=True)
class Call:
    """One call of a :class:`~nsml_hpc.backends.base.SlurmBackend` method."""

    method: str
    job_ids: tuple[str, ...] = ()  # query, queue, cancel
    argument: str | None = None  # submit: script; user_queue: user; estimate_start: partition
    since: float | None = None  # query


class FakeBackend:
    """A Slurm cluster in memory (see the module docstring).

    ``nodes`` is what sinfo says (the sandbox's one node by default); ``waits`` gives, per
    partition, the seconds until a job would start there (``sbatch --test-only``, for
    ``--partition auto``); ``clock`` stamps submit, start and end times.
    """

    cluster: str
    files: RunFiles
    user: str

    def __init__(
        self,
        cluster: str = LOCAL,
        *,
        files: RunFiles | None = None,
        user: str | None = None,
        nodes: Iterable[NodeGpus] = DEFAULT_NODES,
        clock: Callable[[], float] = time.time,
        max_array_size: int = DEFAULT_MAX_ARRAY_SIZE,
        waits: Mapping[str, float] | None = None,
        slurm_version: str = "22.05.8",
        min_job_age: float = MIN_JOB_AGE,
    ) -> None:
        self.cluster = cluster
        self.files = files if files is not None else MemoryFiles(cluster, clock=clock)
        self.user = user or current_user()
        self.nodes = list(nodes)
        self.clock = clock
        self.max_array = max_array_size
        self.waits = dict(waits or {})
        self.slurm_version = slurm_version
        self.min_job_age = min_job_age
        self.next_job_id = FIRST_JOB_ID
        self.jobs: dict[str, FakeJob] = {}
        self.calls: list[Call] = []
        self.failures: dict[str, NsmlError] = {}
        self.closed = False

    # --- the call log and failures ------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def count(self, method: str) -> int:
        """How many times ``method`` was called (failed calls included)."""
        return len(self.calls_to(method))

    @property
    def submitted(self) -> list[str]:
        """The scripts given to :meth:`submit`, in order."""
        return [call.argument or "" for call in self.calls_to("submit")]

    @property
    def cancelled(self) -> list[str]:
        """The job ids given to :meth:`cancel`, in order (unknown ones included)."""
        return [job_id for call in self.calls_to("cancel") for job_id in call.job_ids]

    def fail(self, *methods: str, error: NsmlError) -> None:
        """Make ``methods`` raise ``error`` until :meth:`recover` (the call is still logged).
        A failing ``query`` also shows in :meth:`probe` as accounting that does not answer."""
        for method in methods:
            if not callable(getattr(self, method, None)):
                raise ValueError(f"FakeBackend has no method {method!r}")
            self.failures[method] = error

    def recover(self, *methods: str) -> None:
        """Undo :meth:`fail` for ``methods`` (all of them when none is named)."""
        for method in methods or tuple(self.failures):
            self.failures.pop(method, None)

    def _called(self, call: Call) -> None:
        self.calls.append(call)
        if call.method in self.failures:
            raise self.failures[call.method]

    # --- the jobs -----------------------------------------------------------------------------

    def add(self, *jobs: FakeJob) -> None:
        """Put jobs in place that were submitted some other way (a catalog built by hand)."""
        for job in jobs:
            job.user = job.user or self.user
            job.partition = job.partition or self._default_partition()
            if job.submitted_at is None:
                job.submitted_at = self.clock()
            self.jobs[job.job_id] = job

    def job(self, job_id: str) -> FakeJob:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise KeyError(f"the fake cluster has no job {job_id}") from None

    def apply(self, job_id: str, step: Step) -> None:
        """Move ``job_id`` (a job, a task, or every task of an array) to ``step`` now."""
        for job in self._named([job_id]):
            self._move(job, step)

    def script(self, job_id: str, *steps: Step) -> None:
        """Queue ``steps`` for ``job_id`` (every task of an array): each :meth:`advance`
        applies the next one."""
        for job in self._named([job_id]):
            job.upcoming.extend(steps)

    def advance(self, *job_ids: str) -> list[str]:
        """Apply the next scripted step of ``job_ids`` (of every job when none is named);
        returns the ids of the jobs that moved."""
        moved: list[str] = []
        for job in self._named(job_ids) if job_ids else list(self.jobs.values()):
            if job.upcoming:
                self._move(job, job.upcoming.pop(0))
                moved.append(job.job_id)
        return moved

    def requeue(self, job_id: str, reason: str = "BeginTime") -> None:
        """Slurm requeues the job (preemption, ``scontrol requeue``): PENDING again under the
        same id, its start, end and node cleared."""
        self.apply(job_id, Step("PENDING", reason=reason))

    def forget(self, job_id: str) -> None:
        """Slurm no longer knows the job at all (neither sacct nor squeue)."""
        for job in self._named([job_id]):
            del self.jobs[job.job_id]

    def _named(self, job_ids: Iterable[str]) -> list[FakeJob]:
        wanted = set(job_ids)
        found = [
            job for job in self.jobs.values() if job.job_id in wanted or job.array_id in wanted
        ]
        missing = wanted - {job.job_id for job in found} - {job.array_id for job in found}
        if missing:
            raise KeyError(f"the fake cluster has no job {', '.join(sorted(missing))}")
        return found

    def _move(self, job: FakeJob, step: Step) -> None:
        now = self.clock()
        state = step.state
        back = state == SessionState.PENDING and job.started_at is not None
        if back or (state not in _ENDED and job.ended_at is not None):  # a requeue
            job.restarts += 1
            job.started_at = job.ended_at = job.node_list = None
            job.exit_code = job.signal = 0
        if state in _STARTED and job.started_at is None:
            job.started_at = now
            job.node_list = step.node_list or self._first_node(job.partition)
        if state in _ENDED and job.ended_at is None:
            job.ended_at = now
            default_exit = 1 if state == SessionState.FAILED else 0
            job.exit_code = step.exit_code if step.exit_code is not None else default_exit
            job.signal = step.signal
        job.slurm_state, job.reason = step.slurm_state, step.reason

    def _default_partition(self) -> str:
        defaults = [node.partition for node in self.nodes if node.is_default]
        names = defaults or [node.partition for node in self.nodes]
        return names[0] if names else "debug"

    def _first_node(self, partition: str) -> str | None:
        return next((node.node for node in self.nodes if node.partition == partition), None)

    def _known_to_slurmctld(self, job: FakeJob, now: float) -> bool:
        return job.ended_at is None or now - job.ended_at < self.min_job_age

    # --- SlurmBackend -------------------------------------------------------------------------

    def submit(self, script_path: str) -> str:
        self._called(Call("submit", argument=script_path))
        text = self.files.read_bytes(script_path, SCRIPT_LIMIT)
        if text is None:
            raise self._refused(f"Unable to open file {script_path}")
        options = sbatch_options(text.decode("utf-8", "replace"))
        partition = options.get("partition") or self._default_partition()
        if partition not in self.partitions_of_nodes():
            raise self._refused(
                f"invalid partition specified: {partition}; Invalid partition name specified"
            )
        gpus = _gpus(options)
        if gpus > max((n.gpus_total for n in self.nodes if n.partition == partition), default=0):
            raise self._refused(NODE_REFUSAL)
        tasks = _array_tasks(options.get("array"), self.max_array)
        if tasks == []:
            raise self._refused("Invalid job array specification")
        try:
            time_limit = parse_duration(options.get("time", ""), fractions=False)
        except ValueError:
            raise self._refused("Invalid --time specification") from None
        job_id = str(self.next_job_id)
        self.next_job_id += 1
        nodes = options.get("nodes", "1").split("-")[0]
        job = FakeJob(
            job_id,
            user=self.user,
            name=options.get("job-name") or posixpath.basename(script_path),
            partition=partition,
            gpus=gpus,
            nodes=int(nodes) if nodes.isdigit() else 1,
            time_limit=time_limit,
            submitted_at=self.clock(),
            script_path=script_path,
        )
        if tasks is None:
            self.add(job)
        else:
            self.add(
                *(
                    replace(job, job_id=f"{job_id}_{task}", array_id=job_id, upcoming=[])
                    for task in tasks
                )
            )
        return job_id

    def query(self, job_ids: Sequence[str], since: float) -> list[JobRecord]:
        self._called(Call("query", tuple(job_ids), since=since))
        now = self.clock()
        wanted = set(job_ids)
        return [
            job.accounting_record(now)
            for job in self._in_order()
            if (job.job_id in wanted or job.array_id in wanted)
            and job.in_accounting
            and (job.ended_at is None or job.ended_at >= since)
        ]

    def queue(self, job_ids: Sequence[str]) -> list[JobRecord]:
        self._called(Call("queue", tuple(job_ids)))
        now = self.clock()
        wanted = set(job_ids)
        return [
            job.queue_record()
            for job in self._in_order()
            if (job.job_id in wanted or job.array_id in wanted)
            and self._known_to_slurmctld(job, now)
        ]

    def cancel(self, job_ids: Sequence[str]) -> None:
        self._called(Call("cancel", tuple(job_ids)))
        wanted = set(job_ids)
        for job in self.jobs.values():
            if (job.job_id in wanted or job.array_id in wanted) and job.ended_at is None:
                self._move(job, Step("CANCELLED by 0"))

    def probe(self) -> ClusterProbe:
        self._called(Call("probe"))
        accounting = self.failures.get("query")
        return ClusterProbe(
            slurm_version=self.slurm_version,
            sacct_error=str(accounting) if accounting is not None else None,
            partitions=partition_summary(self.nodes),
        )

    def partitions(self) -> list[str]:
        self._called(Call("partitions"))
        return self.partitions_of_nodes()

    def partitions_of_nodes(self) -> list[str]:
        """The partitions of ``nodes``, in order (not logged: no Slurm call)."""
        return list(dict.fromkeys(node.partition for node in self.nodes))

    def estimate_start(self, resource_args: list[str], partition: str) -> StartEstimate:
        self._called(Call("estimate_start", argument=partition))
        nodes = [node for node in self.nodes if node.partition == partition]
        if not nodes:
            return StartEstimate(partition, None, refusal=PARTITION_REFUSAL)
        gpus = _gpus(sbatch_options("\n".join(f"#SBATCH {arg}" for arg in resource_args)))
        fitting = [node for node in nodes if node.gpus_total >= gpus]
        if not fitting:
            return StartEstimate(partition, None, refusal=NODE_REFUSAL)
        return StartEstimate(
            partition, self.clock() + self.waits.get(partition, 0.0), nodes=fitting[0].node
        )

    def max_array_size(self) -> int:
        self._called(Call("max_array_size"))
        return self.max_array

    def cluster_gpus(self) -> list[NodeGpus]:
        self._called(Call("cluster_gpus"))
        return list(self.nodes)

    def pending_demand(self) -> dict[str, Demand]:
        self._called(Call("pending_demand"))
        found: dict[str, Demand] = {}
        for job in self._in_order():
            if job.state != SessionState.PENDING:
                continue
            for partition in filter(None, job.partition.split(",")):
                old = found.get(partition, Demand())
                found[partition] = Demand(old.jobs + 1, old.gpus + job.gpus * job.nodes)
        return found

    def user_queue(self, user: str) -> list[QueueJob]:
        self._called(Call("user_queue", argument=user))
        now = self.clock()
        mine = [
            job
            for job in self._in_order()
            if job.user == user and job.state not in _ENDED and self._known_to_slurmctld(job, now)
        ]
        lines = [_queue_line(job, job.job_id, now) for job in mine if not _groups(job)]
        pending_tasks: dict[tuple[str, str | None], list[FakeJob]] = {}
        for job in mine:
            if _groups(job):
                pending_tasks.setdefault((job.array_id or "", job.reason), []).append(job)
        for (array_id, _), tasks in pending_tasks.items():
            indexes = [int(task.job_id.rsplit("_", 1)[1]) for task in tasks]
            lines.append(_queue_line(tasks[0], f"{array_id}_[{_ranges(indexes)}]", now))
        # squeue --sort=-t,i: state descending (RUNNING before PENDING), then job id
        lines.sort(key=lambda line: _id_key(line.job_id))
        lines.sort(key=lambda line: line.state, reverse=True)
        return lines

    def close(self) -> None:
        self._called(Call("close"))
        self.closed = True

    # --- inside -------------------------------------------------------------------------------

    def _in_order(self) -> list[FakeJob]:
        return sorted(self.jobs.values(), key=lambda job: _id_key(job.job_id))

    def _refused(self, line: str) -> SubmitRefused:
        where = "" if self.cluster == LOCAL else f" on cluster {self.cluster}"
        return SubmitRefused(f"Slurm refused the job{where}: {line}")


def sbatch_options(script: str) -> dict[str, str]:
    """The long ``#SBATCH --name[=value]`` options of a script, as sbatch reads them: from the
    top, up to the first line that is neither blank nor a comment."""
    options: dict[str, str] = {}
    for line in script.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        if not stripped.startswith("#SBATCH"):
            continue
        words = shlex.split(stripped.removeprefix("#SBATCH"), comments=True)
        for index, word in enumerate(words):
            if not word.startswith("--"):
                continue
            name, has_value, value = word[2:].partition("=")
            if not has_value and index + 1 < len(words) and not words[index + 1].startswith("-"):
                value = words[index + 1]
            options[name] = value
    return options


def _gpus(options: dict[str, str]) -> int:
    """GPUs per node asked with ``--gres=gpu[:type]:N`` or ``--gpus[-per-node]=[type:]N``."""
    if "gres" in options:
        return gpus_in_gres(options["gres"])
    for name in ("gpus-per-node", "gpus"):
        if name in options:
            return gpus_in_gres(f"gpu:{options[name]}")
    return 0


def _array_tasks(spec: str | None, max_array: int) -> list[int] | None:
    """Task indexes of ``--array=0-9%2``/``1,3,5``; None without ``--array``; [] if any
    index is not below MaxArraySize (sbatch refuses the job)."""
    if spec is None:
        return None
    indexes: list[int] = []
    for part in spec.split("%", 1)[0].split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or not (high or low).isdigit():
            return []
        indexes.extend(range(int(low), int(high or low) + 1))
    return sorted(set(indexes)) if indexes and max(indexes) < max_array else []


def _groups(job: FakeJob) -> bool:
    """squeue shows the pending tasks of an array on one line (``8_[2-9]``)."""
    return job.array_id is not None and job.state == SessionState.PENDING


def _ranges(indexes: list[int]) -> str:
    """``[2, 3, 4, 7]`` -> ``2-4,7``."""
    parts: list[tuple[int, int]] = []
    for index in sorted(indexes):
        if parts and parts[-1][1] == index - 1:
            parts[-1] = (parts[-1][0], index)
        else:
            parts.append((index, index))
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in parts)


def _id_key(job_id: str) -> tuple[int, int]:
    """``392`` < ``392_4`` < ``392_10`` < ``393``; a grouped ``392_[2-9]`` sorts as 392."""
    head, _, task = job_id.partition("_")
    return (int(head) if head.isdigit() else 0, int(task) if task.isdigit() else -1)


def _queue_line(job: FakeJob, job_id: str, now: float) -> QueueJob:
    """The job as ``squeue --user`` shows it (parsed)."""
    started = job.started_at
    return QueueJob(
        job_id=job_id,
        state=job.slurm_state,
        reason=None if started is not None else job.reason,
        partition=job.partition,
        gpus=job.gpus,
        time_used=format_duration(now - started, pad_first=False) if started else "0:00",
        time_limit="UNLIMITED"
        if job.time_limit is None
        else format_duration(job.time_limit, pad_first=False),
        nodes=job.nodes,
        submitted_at=job.submitted_at,
        start_at=started if started is not None else job.start_at,
        where=(job.node_list or "") if started is not None else f"({job.reason or 'None'})",
        name=job.name,
    )


if TYPE_CHECKING:  # mypy holds the fakes to the Protocols they stand in for
    _backend: SlurmBackend = FakeBackend()
    _files: RunFiles = MemoryFiles()

__all__ = ["Call", "FakeBackend", "FakeJob", "MemoryFiles", "Step", "sbatch_options"]
