"""The in-job API: what training code calls. Standard library only; it runs in every job.

``report(step=..., **metrics)`` appends one JSON line to ``<run_dir>/metrics.jsonl`` with a
single ``write`` on an ``O_APPEND`` descriptor, so each call is on disk (in the OS) when it
returns: a crash of the training process afterwards loses nothing already reported.

Outside a session (no ``NSML_HPC_RUN_DIR``, e.g. on a laptop) ``report`` checks its arguments
and does nothing else, and ``session.hyperparameters`` is read from ``sys.argv``, so the same
script runs anywhere. Inside one, ``session.hyperparameters`` includes the changes made with
``nsml-hpc set`` while the job runs (:mod:`nsml_hpc.job.live_hparams`).

Several ranks (a multi-node launch, or a script that runs srun itself): ``report`` records on
global rank 0 only (``session.rank``: ``RANK``, else ``SLURM_PROCID`` inside a job step, else
0); every other rank checks its arguments and returns. ``report_rank(...)`` (the opt-in)
records on every rank, each metric tagged with the rank (``loss/rank3``); ranks other than 0
write to a file of their own that the job wrapper relays into metrics.jsonl, so metrics.jsonl
never has writers on two nodes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from nsml_hpc.job import progress
from nsml_hpc.job.direction import Directions
from nsml_hpc.job.hparams import HParamValue, parse_hyperparameters
from nsml_hpc.job.layout import (
    DATASET_ENV,
    DATASET_NAME_ENV,
    METRICS_FILE,
    RANKS_DIR,
    RESTART_COUNT_ENV,
    RESUME_FROM_ENV,
    RESUME_STEP_ENV,
    RUN_DIR_ENV,
    SESSION_FILE,
    relay_file,
)
from nsml_hpc.job.text import name_problem

_RESERVED = frozenset({"step", "time"})


def _in_step() -> bool:
    """Inside an srun job step (the batch script itself is not one)."""
    return bool(os.environ.get("SLURM_STEP_ID"))


def _rank_env(torch_name: str, slurm_name: str) -> int:
    """``torch_name`` (set by torchrun and nsml-hpc's launch modes), else Slurm's per-task
    variable inside a job step (a script that runs srun itself), else 0."""
    value = _int_env(torch_name)
    if value is None and _in_step():
        value = _int_env(slurm_name)
    return value if value is not None and value >= 0 else 0


def global_rank() -> int:
    return _rank_env("RANK", "SLURM_PROCID")


def world_size() -> int:
    value = _int_env("WORLD_SIZE")
    if value is None and _in_step():
        value = _int_env("SLURM_STEP_NUM_TASKS")
    return value if value is not None and value >= 1 else 1


class SessionInfo:
    """What the running training code may want to know about its session."""

    def __init__(self, run_dir: Path | None) -> None:
        self.run_dir = run_dir
        document: dict[str, Any] = {}
        if run_dir is not None:
            try:
                document = json.loads((run_dir / SESSION_FILE).read_text("utf-8"))
            except (OSError, ValueError):
                document = {}
        self._document = document

    @property
    def inside(self) -> bool:
        """True when running as an nsml-hpc session (metrics are recorded)."""
        return self.run_dir is not None

    @property
    def name(self) -> str | None:
        return self._document.get("name")

    @property
    def project(self) -> str | None:
        return self._document.get("project")

    @property
    def args(self) -> list[str]:
        spec = self._document.get("spec")
        return list(spec.get("args", [])) if spec else sys.argv[1:]

    @property
    def hyperparameters(self) -> dict[str, HParamValue]:
        """As submitted; for the running session itself, with the changes taken so far."""
        own = os.environ.get(RUN_DIR_ENV)
        if self.run_dir is not None and own and Path(own) == self.run_dir:
            from nsml_hpc.job.live_hparams import live

            return live.current()
        return self.submitted_hyperparameters

    @property
    def submitted_hyperparameters(self) -> dict[str, HParamValue]:
        return parse_hyperparameters(self.args)

    @property
    def dataset(self) -> Path | None:
        """The folder of the dataset given at submit (``--dataset``): the node-local copy
        when it was staged, else the shared one; ``None`` without a dataset."""
        path = os.environ.get(DATASET_ENV)
        if path:
            return Path(path)
        spec = self._document.get("spec") or {}
        use = spec.get("dataset") if isinstance(spec, dict) else None
        return Path(use["path"]) if isinstance(use, dict) and use.get("path") else None

    @property
    def dataset_name(self) -> str | None:
        """``NAME:VERSION`` of :attr:`dataset`."""
        name = os.environ.get(DATASET_NAME_ENV)
        if name:
            return name
        spec = self._document.get("spec") or {}
        use = spec.get("dataset") if isinstance(spec, dict) else None
        if isinstance(use, dict) and use.get("name"):
            return f"{use['name']}:{use.get('version')}"
        return None

    @property
    def job_id(self) -> str | None:
        return os.environ.get("SLURM_JOB_ID")

    @property
    def resume_from(self) -> Path | None:
        """The snapshot folder to start from: on a requeued job the latest snapshot of this
        session, on a fork the parent's chosen one; ``None`` for a fresh start."""
        path = os.environ.get(RESUME_FROM_ENV)
        return Path(path) if path else None

    @property
    def resume_step(self) -> int | None:
        """The step of :attr:`resume_from` (continue with ``resume_step + 1``)."""
        return _int_env(RESUME_STEP_ENV)

    @property
    def restart_count(self) -> int:
        """How often Slurm has requeued this job (0 on the first run)."""
        return _int_env(RESTART_COUNT_ENV) or _int_env("SLURM_RESTART_COUNT") or 0

    @property
    def rank(self) -> int:
        """This process's global rank (0 in a single-process session)."""
        return global_rank()

    @property
    def world_size(self) -> int:
        """How many ranks the session runs (1 in a single-process session)."""
        return world_size()

    @property
    def local_rank(self) -> int:
        """The rank among this node's ranks (``LOCAL_RANK``, else ``SLURM_LOCALID``)."""
        return _rank_env("LOCAL_RANK", "SLURM_LOCALID")

    @property
    def node_rank(self) -> int:
        """The node's index in the allocation (``NODE_RANK``/``GROUP_RANK``, else
        ``SLURM_NODEID``)."""
        value = _int_env("NODE_RANK")
        if value is None:
            value = _int_env("GROUP_RANK")
        return value if value is not None else _rank_env("NODE_RANK", "SLURM_NODEID")

    @property
    def is_primary(self) -> bool:
        """Global rank 0: the rank whose ``report`` and ``save`` are recorded."""
        return global_rank() == 0

    @property
    def metric_directions(self) -> Directions:
        """Which way is better per metric: the submitter's ``[metrics]`` config at submit
        time (``load("best:M")`` inside the job follows it, as the front end does)."""
        return Directions.from_document(self._document)

    @property
    def forked_from(self) -> dict[str, Any] | None:
        """``{"session", "snapshot", "step", "overrides"}`` when this session is a fork."""
        fork = self._document.get("fork")
        return dict(fork) if isinstance(fork, dict) else None

    def __repr__(self) -> str:
        return f"SessionInfo(name={self.name!r}, run_dir={str(self.run_dir)!r})"


class _SessionProxy:
    """``nsml_hpc.session``: resolved on first use, so importing the package stays free."""

    _info: SessionInfo | None = None

    def _resolve(self) -> SessionInfo:
        if self._info is None:
            run_dir = os.environ.get(RUN_DIR_ENV)
            self._info = SessionInfo(Path(run_dir) if run_dir else None)
        return self._info

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resolve(), name)

    def __repr__(self) -> str:
        return repr(self._resolve())


session: Any = _SessionProxy()


def _int_env(name: str) -> int | None:
    text = os.environ.get(name, "").strip()
    return int(text) if text.lstrip("-").isdigit() else None


class _MetricWriter:
    def __init__(self) -> None:
        self.fd: int | None = None
        self.pid = -1
        self.checked = False
        self.rank = 0
        resumed = _int_env(RESUME_STEP_ENV)
        self.next_step = resumed + 1 if resumed is not None else 0
        self.latest: dict[str, Any] = {}  # last value of each metric (for snapshot manifests)

    def current_rank(self) -> int:
        """This process's global rank, looked up once per process."""
        if self.pid != os.getpid():
            self.checked, self.fd, self.pid = False, None, os.getpid()
            self.rank = global_rank()
        return self.rank

    def open(self) -> int | None:
        self.current_rank()
        if self.checked:
            return self.fd
        self.checked = True
        run_dir = os.environ.get(RUN_DIR_ENV)
        if not run_dir:
            self.fd = None
            return None
        if self.rank == 0:
            path = Path(run_dir) / METRICS_FILE
        else:  # report_rank lines only: relayed into metrics.jsonl by the job wrapper
            restart = _int_env(RESTART_COUNT_ENV) or _int_env("SLURM_RESTART_COUNT") or 0
            job = os.environ.get("SLURM_JOB_ID")
            path = Path(run_dir) / relay_file(RANKS_DIR, job, restart, self.rank)
            path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self.fd


_writer = _MetricWriter()


def next_step() -> int:
    """The step the next ``report()`` without a step would record."""
    return _writer.next_step


progress.next_step = next_step


_NUMBER_TYPES = (int, float)
_encode = json.JSONEncoder(separators=(",", ":")).encode  # built once: ~1 µs per call saved


def latest_metrics() -> tuple[int | None, dict[str, float | None]]:
    """The last reported step and the last value of every metric reported so far."""
    values = {k: v for k, v in _writer.latest.items() if k not in _RESERVED}
    step = _writer.latest.get("step")
    return (step if isinstance(step, int) else None), values


def report(step: int | None = None, **metrics: Any) -> None:
    """Record ``metrics`` (numbers) at ``step``; without a step, the last step plus one.

    With several ranks only global rank 0's calls are recorded (see :func:`report_rank`)."""
    _record(step, metrics, per_rank=False)


def report_rank(step: int | None = None, **metrics: Any) -> None:
    """Record this rank's ``metrics`` at ``step``, on every rank, each named
    ``<name>/rank<rank>`` (``loss/rank3``): per-rank values, opted into explicitly."""
    _record(step, metrics, per_rank=True)


def _record(step: int | None, metrics: dict[str, Any], *, per_rank: bool) -> None:
    if step is None:
        step = _writer.next_step
    elif type(step) is not int:
        if isinstance(step, bool) or not hasattr(step, "__index__"):
            raise TypeError(f"report(step=...) must be an int, got {step!r}")
        step = int(step)
    line: dict[str, Any] = {"step": step, "time": time.time()}
    for name, value in metrics.items():
        if name in _RESERVED:
            raise ValueError(f"{name!r} is reserved; pick another metric name")
        problem = name_problem(name, "metric name")
        if problem is not None:  # the front end would refuse it anyway (nsml_hpc.job.text)
            raise ValueError(f"{problem}; pick another metric name")
        if type(value) not in _NUMBER_TYPES:
            try:
                value = float(value)  # numpy scalars, 0-d tensors
            except (TypeError, ValueError):
                raise TypeError(f"metric {name}={value!r} is not a number") from None
        line[name] = value
    _writer.next_step = step + 1
    rank = _writer.current_rank()
    if per_rank:
        line = {key if key in _RESERVED else f"{key}/rank{rank}": v for key, v in line.items()}
    else:
        _writer.latest.update(line)
        if rank != 0:
            return  # only global rank 0's metrics are the session's
    fd = _writer.open()
    if fd is None:
        return
    data = (_encode(line) + "\n").encode()
    while data:
        written = os.write(fd, data)
        data = data[written:]
    hook = progress.after_report
    if hook is not None:
        hook()
