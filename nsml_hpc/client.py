"""The Python API for notebooks and scripts: list, read, submit, sweep and stop sessions.

::

    from nsml_hpc.client import Client

    with Client() as nsml:                       # the same config, catalog and clusters as the CLI
        table = nsml.sessions(project="mnist")    # a pandas DataFrame, one row per session
        run = nsml.session("mnist/3")
        run.state, run.hyperparameters["lr"], run.spec.resources.gpus
        history = run.history()                   # DataFrame: step, time, one column per metric
        points = nsml.history(["mnist/3", "mnist/4"], ["val_loss"])   # long: session, step, ...
        new = nsml.submit("train.py", ["--lr", "0.05"], gpus=1, time="1:00:00")
        sweep = nsml.sweep("train.py", grid={"lr": [0.1, 0.01]}, max_parallel=2)
        new.wait()                                # or new.stop()

The shapes follow what people know from ``mlflow.search_runs`` (one row per run, with
``params.*`` and ``metrics.*`` columns) and W&B's ``run.history()`` (one row per step, one
column per metric). This module is a front end like the CLI and the TUI: it reaches the
library only through :class:`nsml_hpc.workspace.Workspace` (the rule in that module's
docstring, checked by tests/pure/test_headless.py). pandas is imported only by the methods
that return DataFrames; ``import nsml_hpc`` in a training script never loads this module.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nsml_hpc.errors import NsmlError, SpecError
from nsml_hpc.job.spec import Preemption, SessionSpec
from nsml_hpc.logs import configure as configure_logging
from nsml_hpc.sweeps.grid import expand, parse_grid

if TYPE_CHECKING:
    import pandas

    from nsml_hpc.sessions.views import SessionRow
    from nsml_hpc.submit.create import Prepared
    from nsml_hpc.workspace import Workspace

_TERMINAL = (
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "BOOT_FAIL",
    "DEADLINE",
    "LOST",
)


class Client:
    """A workspace (settings, catalog, clusters) with the everyday operations.

    Reads never ask Slurm unless ``sync=True`` (or :meth:`sync` is called): a notebook cell
    that lists sessions answers from the catalog at once. Close it (or use ``with``) to close
    the catalog and any SSH connection."""

    def __init__(self, workspace: Workspace | None = None) -> None:
        configure_logging()  # NSML_HPC_LOG, as in the CLI
        if workspace is None:
            from nsml_hpc.workspace import Workspace

            workspace = Workspace.open()
            self._owned = True
        else:
            self._owned = False
        self.workspace = workspace

    # --- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        if self._owned:
            self.workspace.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- reading --------------------------------------------------------------------------

    def sync(self, clusters: Sequence[str] | None = None) -> dict[str, Any]:
        """Ask Slurm about live sessions and ingest new metrics (one sacct per cluster)."""
        report = self.workspace.sync(list(clusters) if clusters else None)
        return dict(report.__dict__)

    def rows(
        self,
        *,
        project: str | None = None,
        cluster: str | None = None,
        sweep: str | None = None,
        state: str | Sequence[str] | None = None,
        limit: int | None = None,
        sync: bool = False,
    ) -> list[SessionRow]:
        """The listed sessions as plain rows (what ``ps`` shows), newest first."""
        if sync:
            self.sync()
        rows = self.workspace.sessions(project=project, cluster=cluster, sweep=sweep)
        if state is not None:
            wanted = {state} if isinstance(state, str) else set(state)
            wanted = {item.upper() for item in wanted}
            rows = [row for row in rows if row.state in wanted]
        return rows[:limit] if limit is not None else rows

    def sessions(
        self,
        *,
        project: str | None = None,
        cluster: str | None = None,
        sweep: str | None = None,
        state: str | Sequence[str] | None = None,
        limit: int | None = None,
        sync: bool = False,
    ) -> pandas.DataFrame:
        """One row per session (newest first): name, project, cluster, user, state, reason,
        exit code, GPUs, elapsed seconds, requeues, memo, created, last step, then
        ``params.NAME`` per hyperparameter and ``metrics.NAME`` per last metric value (as
        ``mlflow.search_runs``). Filters: ``project``, ``cluster``, ``sweep``
        (``PROJECT/sweep-N``), ``state`` (one or several), ``limit``."""
        import pandas

        records = []
        for row in self.rows(
            project=project, cluster=cluster, sweep=sweep, state=state, limit=limit, sync=sync
        ):
            record: dict[str, Any] = {
                "name": row.name,
                "project": row.project,
                "cluster": row.cluster,
                "user": row.user,
                "state": row.state,
                "reason": row.reason,
                "exit_code": row.exit_code,
                "gpus": row.gpus,
                "elapsed_s": row.elapsed_s,
                "requeues": row.requeues,
                "memo": row.memo,
                "created_at": pandas.Timestamp(row.created_at, unit="s", tz="UTC"),
                "last_step": row.last_step,
            }
            record.update({f"params.{key}": value for key, value in row.hyperparameters.items()})
            record.update({f"metrics.{key}": value for key, value in row.last_metrics.items()})
            records.append(record)
        frame = pandas.DataFrame.from_records(records)
        if frame.empty:
            return pandas.DataFrame(columns=["name", "project", "cluster", "state"])
        return frame

    def session(self, name: str) -> Session:
        """One session (NotFoundError, with the closest names, if there is none)."""
        return Session(self, self.workspace.session(name))

    def history(self, names: str | Sequence[str], metrics: Sequence[str] = ()) -> pandas.DataFrame:
        """Every point of the sessions (of ``metrics`` only, if given), long format:
        columns session, step, time (UTC timestamps), metric, value. NaN/inf values reported
        are NaN here; points a resumed run redid are left out."""
        import pandas

        chosen = [names] if isinstance(names, str) else list(names)
        columns = self.workspace.metric_history(chosen, metrics)
        frame = pandas.DataFrame(columns)
        frame["step"] = frame["step"].astype("Int64")
        frame["value"] = frame["value"].astype("float64")
        frame["time"] = pandas.to_datetime(frame["time"], unit="s", utc=True)
        return frame

    def metric_names(self, name: str | None = None) -> list[str]:
        """Metrics reported by session ``name`` (or by any session)."""
        return self.workspace.metric_names(name)

    def compare(self, names: Sequence[str] = (), *, project: str | None = None) -> pandas.DataFrame:
        """What ``compare`` prints: differing hyperparameters, state, runtime, and each
        metric's last value, best value and the step of the best, one row per session."""
        return self.workspace.comparison_table(list(names), project=project)

    # --- acting ---------------------------------------------------------------------------

    def submit(
        self,
        script: str | Path,
        args: Sequence[str] = (),
        *,
        project: str | None = None,
        cluster: str | None = None,
        memo: str = "",
        code_root: str | Path | None = None,
        grace_seconds: int | None = None,
        max_requeues: int | None = None,
        launch: str = "plain",
        after: Sequence[str] | str | None = None,
        **resources: Any,
    ) -> Session:
        """Submit ``script`` with ``args`` as a new session, as ``nsml-hpc submit`` does:
        the code folder (``code_root``, default: the working directory when it holds the
        script, else the script's folder) is snapshotted. ``launch`` is ``--launch`` (plain,
        srun, srun-per-gpu, torchrun); ``after`` names sessions to wait for (``--after``).
        Resources as keywords, the CLI's flags with ``_`` for ``-``: ``gpus`` (``2`` or
        ``"a100:2"``, per node), ``gpus_per_node``, ``nodes``, ``ntasks_per_node``,
        ``cpus_per_task``, ``cpus_per_gpu``, ``mem``, ``time``, ``partition`` (or
        ``"auto"``), ``account``, ``qos``, ``constraint``, ``exclusive``, ``reservation``,
        ``dependency``, ``mail_type``, ``mail_user``, ``sbatch_args`` (a list). They are
        parsed and checked as the CLI's are, the cluster asked whether any partition can
        hold the request, and nothing is created when one is refused."""
        prepared = self._prepare(
            script,
            args,
            project,
            cluster,
            memo,
            code_root,
            grace_seconds,
            max_requeues,
            launch,
            after,
            resources,
        )
        done = self.workspace.submit(prepared)
        return self.session(done.name)

    def sweep(
        self,
        script: str | Path,
        args: Sequence[str] = (),
        *,
        grid: Mapping[str, Sequence[Any]],
        max_parallel: int | None = None,
        project: str | None = None,
        cluster: str | None = None,
        memo: str = "",
        code_root: str | Path | None = None,
        launch: str = "plain",
        after: Sequence[str] | str | None = None,
        **resources: Any,
    ) -> list[Session]:
        """One session per combination of ``grid`` (``{"lr": [0.1, 0.01], "bs": [32]}``),
        submitted as ONE job array (at most ``max_parallel`` at once); ``args`` are shared;
        ``launch``, ``after`` and the resources as for :meth:`submit`."""
        if not grid:
            raise SpecError("give the grid to sweep over, e.g. grid={'lr': [0.1, 0.01]}")
        grids = [
            parse_grid(f"{key}={','.join(str(value) for value in values)}")
            for key, values in grid.items()
        ]
        configurations = expand(grids)
        prepared = self._prepare(
            script, args, project, cluster, memo, code_root, None, None, launch, after, resources
        )
        done = self.workspace.sweep(prepared, configurations, max_parallel=max_parallel)
        return [self.session(name) for name in done.sessions]

    def stop(self, name: str) -> list[str]:
        """Cancel the session's live job; returns the job ids."""
        return self.workspace.stop(name)

    def _prepare(
        self,
        script: str | Path,
        args: Sequence[str],
        project: str | None,
        cluster: str | None,
        memo: str,
        code_root: str | Path | None,
        grace_seconds: int | None,
        max_requeues: int | None,
        launch: str,
        after: Sequence[str] | str | None,
        resources: dict[str, Any],
    ) -> Prepared:
        """The CLI's path (:mod:`nsml_hpc.submit.request`, then
        :meth:`Workspace.prepare_submission`), from keywords instead of flags."""
        from nsml_hpc.submit.request import after_given, keyword, resources_from

        built = resources_from(resources, keyword)
        path = Path(script)
        root = Path(code_root) if code_root is not None else None
        if root is None:
            absolute = path if path.is_absolute() else Path.cwd() / path
            root = self.workspace.code_root_for(absolute, Path.cwd())
        absolute = path if path.is_absolute() else root / path
        if not absolute.is_file() and not path.is_absolute():
            absolute = Path.cwd() / path
        if not absolute.is_file():
            raise SpecError(f"script not found: {script}")
        preemption: dict[str, Any] = {}
        if grace_seconds is not None:
            preemption["grace_seconds"] = grace_seconds
        if max_requeues is not None:
            preemption["max_requeues"] = max_requeues
        spec = SessionSpec(
            project=project or _default_project(root),
            script=absolute.resolve().relative_to(root.resolve()).as_posix(),
            args=[str(arg) for arg in args],
            resources=built,
            memo=memo,
            cluster=cluster or self.workspace.settings.default_cluster,
            preemption=Preemption(**preemption),
            launch=launch,
            after=after_given(after, keyword),
        )
        return self.workspace.prepare_submission(spec, root)


def _default_project(code_root: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", code_root.name).strip(".-")
    return name[:64] or "default"


@dataclass
class Session:
    """One session as read from the catalog (:meth:`refresh` reads it again)."""

    client: Client = field(repr=False)
    row: SessionRow = field(repr=False)

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def state(self) -> str:
        return self.row.state

    @property
    def state_text(self) -> str:
        return self.row.state_text

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return dict(self.row.hyperparameters)

    @property
    def memo(self) -> str:
        return self.row.memo

    @property
    def job_ids(self) -> list[str]:
        return list(self.row.job_ids)

    @property
    def last_metrics(self) -> dict[str, float | None]:
        return dict(self.row.last_metrics)

    @property
    def detail(self) -> dict[str, Any]:
        """Everything ``show --json`` prints."""
        return self.client.workspace.show(self.name)

    @property
    def spec(self) -> SessionSpec:
        """The spec as submitted (script, args, resources, environment, cluster)."""
        return SessionSpec.from_dict(self.detail["spec"])

    @property
    def run_dir(self) -> str:
        return str(self.detail["run_dir"])

    def refresh(self, *, sync: bool = False) -> Session:
        if sync:
            self.client.sync([self.row.cluster])
        self.row = self.client.workspace.session(self.name)
        return self

    def history(self, metrics: Sequence[str] = ()) -> pandas.DataFrame:
        """One row per reported step (as W&B's ``run.history()``): columns step, time and one
        per metric; NaN where a step did not report a metric."""
        long = self.client.history([self.name], metrics)
        if long.empty:
            import pandas

            return pandas.DataFrame(columns=["step", "time", *metrics])
        wide = long.pivot_table(
            index=["step"], columns="metric", values="value", aggfunc="last", dropna=False
        )
        times = long.groupby("step")["time"].max()
        wide.insert(0, "time", times)
        wide = wide.reset_index()
        wide.columns.name = None
        return wide

    def snapshots(self) -> list[dict[str, Any]]:
        """The session's snapshots (tag, step, metrics, size, flags), oldest first."""
        return [row.to_json() for row in self.client.workspace.snapshots(self.name)]

    def logs(self) -> str:
        """Everything the session printed so far."""
        return b"".join(self.client.workspace.read_logs(self.name)).decode("utf-8", "replace")

    def stop(self) -> list[str]:
        return self.client.stop(self.name)

    def wait(self, timeout: float | None = None, interval: float = 5.0) -> Session:
        """Sync until the session has ended (NsmlError after ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.refresh(sync=True)
            if self.state in _TERMINAL:
                return self
            if deadline is not None and time.monotonic() > deadline:
                raise NsmlError(f"{self.name} is still {self.state_text} after {timeout} s")
            time.sleep(interval)


def sessions(**filters: Any) -> pandas.DataFrame:
    """:meth:`Client.sessions` with a client of its own (one call in a notebook cell)."""
    with Client() as client:
        return client.sessions(**filters)


def history(names: str | Sequence[str], metrics: Sequence[str] = ()) -> pandas.DataFrame:
    """:meth:`Client.history` with a client of its own."""
    with Client() as client:
        return client.history(names, metrics)


__all__ = ["Client", "Session", "history", "sessions"]
