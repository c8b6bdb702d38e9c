"""Read models shared by the CLI and the TUI, as plain data: :class:`SessionRow`, the ONE row
of a listed session (``ps``, ``ps --json``, the TUI's session table, the head of ``show``), and
:func:`session_detail`, everything ``show`` prints.

Elapsed time has one rule, :func:`elapsed_seconds`: the wall-clock time since the session's
first start, up to now while it is still going (running, or held for a requeue) and up to its
end once it ended (sync records ``max(Slurm's Elapsed, end - first start)``, so a requeued
session shows the same time just before and just after it ends). Every row is built by
:func:`session_row` with it, a row advances with :meth:`SessionRow.elapsed_at`, and the
table's ELAPSED sort uses its SQL form, :func:`elapsed_expression`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, cast

from nsml_hpc.job.layout import METRICS_FILE
from nsml_hpc.runfiles.idle import IdleState, idle_for
from nsml_hpc.runfiles.scrape import stored_event_fields
from nsml_hpc.sessions.nodes import (
    NodeState,
    allocated_nodes,
    node_states,
    node_summary,
    requested_nodes,
)
from nsml_hpc.slurm.states import TERMINAL_STATES, SessionState

if TYPE_CHECKING:
    from nsml_hpc.catalog.engine import Catalog


def format_state(state: str, reason: str | None, exit_code: int | None) -> str:
    """``PENDING (Resources)``, ``FAILED (exit 3)``, ``RUNNING``."""
    if state == SessionState.FAILED and exit_code is not None:
        return f"FAILED (exit {exit_code})"
    if reason and state not in TERMINAL_STATES:
        return f"{state} ({reason})"
    return state


# States in which a session that has started is still going: its elapsed time advances.
ADVANCING_STATES = (
    SessionState.RUNNING,
    SessionState.PENDING,  # held for a requeue (a session that never started has no start)
    SessionState.REQUEUED,
    SessionState.SUSPENDED,
)


def elapsed_seconds(
    state: str, recorded: float | None, started_at: float | None, now: float
) -> float | None:
    """Wall-clock time since the first start (``started_at``) while the session is still
    going; the recorded time (Slurm's, or end - first start, whichever is larger) after."""
    if state in ADVANCING_STATES and started_at:
        return max(recorded or 0.0, now - started_at)
    return recorded


def elapsed(record: RecordFields, now: float) -> float | None:
    """:func:`elapsed_seconds` of a catalog record (``compare``'s runtime)."""
    return elapsed_seconds(record.state, record.elapsed_s, record.started_at, now)


def elapsed_expression(state: Any, recorded: Any, started_at: Any, now: float) -> Any:
    """:func:`elapsed_seconds` over table columns, for sorting in SQL (SQLite and PostgreSQL)."""
    from sqlalchemy import and_, case, func, literal
    from sqlalchemy.sql import ColumnElement

    running = and_(state.in_(ADVANCING_STATES), started_at.is_not(None), started_at != 0)
    recorded_or_zero = func.coalesce(recorded, 0.0)
    since_start = literal(now) - started_at
    advanced: ColumnElement[Any] = case(
        (since_start > recorded_or_zero, since_start), else_=recorded_or_zero
    )
    return case((running, advanced), else_=recorded)


class RecordFields(Protocol):
    """The columns a row is built from: a catalog record, or a row of a query that selects
    the same columns by the same names (the session table's page)."""

    @property
    def id(self) -> int | None: ...
    @property
    def name(self) -> str: ...
    @property
    def project(self) -> str: ...
    @property
    def cluster(self) -> str: ...
    @property
    def user(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def gpus(self) -> int: ...
    @property
    def elapsed_s(self) -> float | None: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def last_step(self) -> int | None: ...
    @property
    def last_metrics_json(self) -> str: ...
    @property
    def memo(self) -> str: ...
    @property
    def created_at(self) -> float: ...


ROW_COLUMNS = ("memo", "user", "project", "cluster")  # ps --column names that are not hparams

JSON_FIELDS = (
    "name",
    "owner",
    "cluster",
    "state",
    "reason",
    "exit_code",
    "gpus",
    "elapsed_s",
    "last_step",
    "last_metrics",
    "job_ids",
    "memo",
    "created_at",
    "gpu_util",
    "gpu_idle_s",
    "requeues",
    "nodes",
    "node_list",
    "node_summary",
)


@dataclass(frozen=True)
class SessionRow:
    """One listed session: a line of ``ps`` and of the TUI's table, an object of ``ps --json``.

    ``elapsed_s`` is the elapsed time as of the read; :meth:`elapsed_at` advances it.
    ``job_ids``, ``gpu_util``, ``gpu_idle_s`` and ``requeues`` are filled for ``ps`` and
    ``show``; ``key_*`` (the table's key metric, last and best) for the table's page.
    ``name`` is as the catalog shows it: ``project/N``, or ``owner/project/N`` once it holds
    another user's sessions; ``owner`` is the catalog user, ``user`` the cluster account.
    """

    id: int
    name: str
    project: str
    cluster: str
    user: str
    state: str
    reason: str | None
    exit_code: int | None
    gpus: int
    elapsed_s: float | None
    started_at: float | None
    last_step: int | None
    last_metrics: dict[str, float | None]
    memo: str
    created_at: float
    job_ids: list[str] = field(default_factory=list)
    gpu_util: float | None = None  # mean utilisation of the last nvidia-smi sample
    gpu_idle_s: float = 0.0  # how long every GPU of the session has sat at 0 %
    requeues: int = 0
    key_last: float | None = None
    key_best: float | None = None
    key_best_step: int | None = None
    nodes: int = 1  # nodes asked for (gpus counts the GPUs of all of them)
    node_list: str | None = None  # Slurm's list of the latest run's nodes
    node_summary: str = ""  # per-node state of a multi-node launch: "duo1 running, duo2 ok"

    @property
    def gpus_text(self) -> str:
        """``4``, or ``2x4`` for 4 GPUs on each of 2 nodes (``gpus`` counts all nodes');
        ``0`` for a CPU-only session on any number of nodes."""
        if self.nodes == 1 or self.gpus == 0 or self.gpus % self.nodes:
            return str(self.gpus)
        return f"{self.nodes}x{self.gpus // self.nodes}"

    owner: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # filled for ps and show

    @property
    def state_text(self) -> str:
        return format_state(self.state, self.reason, self.exit_code)

    def elapsed_at(self, now: float) -> float | None:
        """Elapsed time as of ``now``: still advancing while the session runs."""
        return elapsed_seconds(self.state, self.elapsed_s, self.started_at, now)

    def to_json(self) -> dict[str, Any]:
        """What ``ps --json`` prints for the row (and ``show --json`` starts from)."""
        data: dict[str, Any] = {name: getattr(self, name) for name in JSON_FIELDS}
        data["last_metrics"] = dict(self.last_metrics)
        data["job_ids"] = list(self.job_ids)
        data["state_text"] = self.state_text
        data["hyperparameters"] = dict(self.hyperparameters)
        return data

    def column(self, name: str) -> Any:
        """A ``ps --column`` value: ``memo``, ``user``, ``project``, ``cluster`` or a
        hyperparameter (None where the session has none)."""
        if name in ROW_COLUMNS:
            return getattr(self, name)
        return self.hyperparameters.get(name)


def session_row(
    fields: RecordFields,
    now: float,
    *,
    job_ids: Sequence[str] = (),
    gpu: IdleState | None = None,
    requeues: int = 0,
    key_last: float | None = None,
    key_best: float | None = None,
    key_best_step: int | None = None,
    nodes: int = 1,
    node_list: str | None = None,
    node_states: Sequence[NodeState] = (),
    hyperparameters: dict[str, Any] | None = None,
    shared: bool = False,
) -> SessionRow:
    """The row of one session as of ``now`` (GPU figures only while it runs); ``shared``:
    the catalog holds other users' sessions, so the name says whose."""
    assert fields.id is not None
    live_gpu = gpu if gpu is not None and fields.state == SessionState.RUNNING else None
    return SessionRow(
        id=fields.id,
        name=f"{fields.owner}/{fields.name}" if shared else fields.name,
        owner=fields.owner,
        project=fields.project,
        cluster=fields.cluster,
        user=fields.user,
        state=fields.state,
        reason=fields.reason,
        exit_code=fields.exit_code,
        gpus=fields.gpus,
        elapsed_s=elapsed_seconds(fields.state, fields.elapsed_s, fields.started_at, now),
        started_at=fields.started_at,
        last_step=fields.last_step,
        last_metrics=json.loads(fields.last_metrics_json or "{}"),
        memo=fields.memo,
        created_at=fields.created_at,
        job_ids=list(job_ids),
        gpu_util=live_gpu.last_util if live_gpu else None,
        gpu_idle_s=idle_for(live_gpu, now) if live_gpu else 0.0,
        requeues=requeues,
        key_last=key_last,
        key_best=key_best,
        key_best_step=key_best_step,
        nodes=nodes,
        node_list=node_list,
        node_summary=node_summary(node_states),
        hyperparameters=hyperparameters or {},
    )


def shown_resources(resources: dict[str, Any]) -> dict[str, Any]:
    """The resources a session asked for, without the unset ones (GPUs as ``a100:4``)."""
    shown = {k: v for k, v in resources.items() if v not in (None, 0, False, [], "")}
    if resources.get("gpu_type") and "gpus" in shown:
        shown["gpus"] = f"{resources['gpu_type']}:{resources['gpus']}"
        shown.pop("gpu_type", None)
    if "sbatch_args" in shown:
        shown["sbatch_args"] = " ".join(shown["sbatch_args"])
    return shown


@dataclass(frozen=True)
class _Nodes:
    """A session's nodes, for its row: asked for, allocated, and how each is doing."""

    count: int = 1
    listed: str | None = None
    states: list[NodeState] = field(default_factory=list)


class ReadSource(Protocol):
    """Where ``ps`` and ``show`` read from: the catalog through SQLAlchemy
    (:class:`CatalogSource`), or a SQLite catalog read with the standard library
    (:class:`nsml_hpc.catalog.quickread.QuickReader`, the login node's fast path). Records are
    catalog rows, or plain rows with the same attribute names; every rule that turns them into
    what ``ps`` and ``show`` print is below, once, for both."""

    @property
    def user(self) -> str: ...
    def list_sessions(
        self, *, project: str | None, cluster: str | None, limit: int | None, owner: str | None
    ) -> Sequence[Any]: ...
    def sweep_members(self, sweep: str) -> Sequence[Any]: ...
    def get_session(self, name: str) -> Any: ...
    def jobs_of(self, session_ids: Sequence[int]) -> dict[int, list[Any]]: ...
    def gpu_states(self, session_ids: Sequence[int]) -> dict[int, IdleState]: ...
    def requeue_counts(self, session_ids: Sequence[int]) -> dict[int, int]: ...
    def holds_other_users(self) -> bool: ...
    def spec_jsons(self, session_ids: Sequence[int]) -> dict[int, str]: ...
    def task_events(self, session_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]: ...
    # show only
    def malformed_lines(self, session_id: int) -> int: ...
    def allocations(self, jobs: Sequence[Any]) -> dict[str, dict[str, Any]]: ...
    def job_runs(self, session_id: int) -> list[Any]: ...
    def snapshots(self, session_id: int) -> list[Any]: ...
    def lineage(self, session_id: int) -> Any: ...
    def children(self, session_id: int) -> list[tuple[str, str]]: ...
    def superseded_count(self, session_id: int) -> int: ...
    def dataset(self, session_id: int) -> Any: ...
    def stdout_captures(self, session_ids: Sequence[int]) -> dict[int, str | None]: ...
    def hparam_events(self, session_id: int) -> list[Any]: ...
    def ingest_problems(self, session_id: int) -> list[dict[str, Any]]: ...
    def metric_sources(self, session_id: int) -> dict[str, str]: ...
    def non_finite_count(self, session_id: int) -> int: ...
    def state_history(self, session_id: int) -> list[Any]: ...
    def events_of(self, session_id: int) -> list[Any]: ...


class CatalogSource:
    """:class:`ReadSource` over any catalog (SQLite or PostgreSQL), through the catalog
    modules' own queries."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    @property
    def user(self) -> str:
        return self.catalog.user

    def list_sessions(
        self, *, project: str | None, cluster: str | None, limit: int | None, owner: str | None
    ) -> Sequence[Any]:
        from nsml_hpc.catalog.sessions import list_sessions

        return list_sessions(
            self.catalog, project=project, cluster=cluster, limit=limit, owner=owner
        )

    def sweep_members(self, sweep: str) -> Sequence[Any]:
        from nsml_hpc.catalog.sessions import sweep_members

        return sweep_members(self.catalog, sweep)

    def get_session(self, name: str) -> Any:
        from nsml_hpc.catalog.sessions import get_session

        return get_session(self.catalog, name)

    def jobs_of(self, session_ids: Sequence[int]) -> dict[int, list[Any]]:
        from nsml_hpc.catalog.sessions import jobs_of

        return dict(jobs_of(self.catalog, session_ids))

    def gpu_states(self, session_ids: Sequence[int]) -> dict[int, IdleState]:
        from nsml_hpc.catalog.gpu import gpu_states

        return gpu_states(self.catalog, session_ids)

    def requeue_counts(self, session_ids: Sequence[int]) -> dict[int, int]:
        from nsml_hpc.catalog.snapshots import requeue_counts

        return requeue_counts(self.catalog, session_ids)

    def holds_other_users(self) -> bool:
        from nsml_hpc.catalog.sessions import holds_other_users

        return holds_other_users(self.catalog)

    def spec_jsons(self, session_ids: Sequence[int]) -> dict[int, str]:
        from nsml_hpc.sessions.nodes import spec_jsons

        return spec_jsons(self.catalog, session_ids)

    def task_events(self, session_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        from nsml_hpc.sessions.nodes import task_events

        return task_events(self.catalog, session_ids)

    def malformed_lines(self, session_id: int) -> int:
        from nsml_hpc.catalog.metrics import load_cursors

        cursor = load_cursors(self.catalog, [session_id]).get((session_id, METRICS_FILE))
        return cursor.malformed if cursor else 0

    def allocations(self, jobs: Sequence[Any]) -> dict[str, dict[str, Any]]:
        from nsml_hpc.catalog.allocations import job_allocations

        return {key: found.to_json() for key, found in job_allocations(self.catalog, jobs).items()}

    def job_runs(self, session_id: int) -> list[Any]:
        from nsml_hpc.catalog.snapshots import job_runs_of

        return list(job_runs_of(self.catalog, [session_id])[session_id])

    def snapshots(self, session_id: int) -> list[Any]:
        from nsml_hpc.catalog.snapshots import snapshots_of

        return list(snapshots_of(self.catalog, [session_id])[session_id])

    def lineage(self, session_id: int) -> Any:
        from nsml_hpc.catalog.snapshots import lineage_of

        return lineage_of(self.catalog, session_id)

    def children(self, session_id: int) -> list[tuple[str, str]]:
        from nsml_hpc.catalog.snapshots import children_of

        return children_of(self.catalog, session_id)

    def superseded_count(self, session_id: int) -> int:
        from nsml_hpc.catalog.metrics import superseded_count

        return superseded_count(self.catalog, session_id)

    def dataset(self, session_id: int) -> Any:
        from nsml_hpc.catalog.datasets import dataset_of

        return dataset_of(self.catalog, session_id)

    def stdout_captures(self, session_ids: Sequence[int]) -> dict[int, str | None]:
        from nsml_hpc.catalog.datasets import stdout_captures

        return stdout_captures(self.catalog, session_ids)

    def hparam_events(self, session_id: int) -> list[Any]:
        from nsml_hpc.catalog.hparam_events import taken_events

        return taken_events(self.catalog, [session_id])

    def ingest_problems(self, session_id: int) -> list[dict[str, Any]]:
        return ingest_problems(self.catalog, session_id)

    def metric_sources(self, session_id: int) -> dict[str, str]:
        from nsml_hpc.catalog.metrics import metric_sources

        return metric_sources(self.catalog, session_id)

    def non_finite_count(self, session_id: int) -> int:
        from nsml_hpc.catalog.metrics import non_finite_count

        return non_finite_count(self.catalog, session_id)

    def state_history(self, session_id: int) -> list[Any]:
        from nsml_hpc.catalog.sessions import state_history

        return list(state_history(self.catalog, session_id))

    def events_of(self, session_id: int) -> list[Any]:
        from nsml_hpc.catalog.sessions import events_of

        return list(events_of(self.catalog, session_id))


def with_nodes(catalog: Catalog, rows: Sequence[SessionRow]) -> list[SessionRow]:
    """``rows`` with their node count, node list and per-node state filled in (the TUI
    table's page; ``ps`` and ``show`` rows have them already)."""
    nodes = _nodes(CatalogSource(catalog), rows, {})
    return [
        replace(
            row,
            nodes=found.count,
            node_list=found.listed,
            node_summary=node_summary(found.states),
        )
        if (found := nodes.get(row.id)) is not None
        else row
        for row in rows
    ]


def _nodes(
    source: ReadSource, records: Sequence[RecordFields | SessionRow], jobs: dict[int, list[Any]]
) -> dict[int, _Nodes]:
    """Nodes of multi-node sessions (two queries: requested nodes, then their task events);
    the node list is the one the job wrapper saw, else sacct's."""
    live = {r.id: r.state not in TERMINAL_STATES for r in records if r.id is not None}
    specs = source.spec_jsons(list(live))
    counts = {key: n for key, text in specs.items() if (n := requested_nodes(text)) > 1}
    events = source.task_events(list(counts))
    found: dict[int, _Nodes] = {}
    for key, count in counts.items():
        own = events.get(key, [])
        runs = jobs.get(key, [])
        listed = allocated_nodes(own) or (runs[-1].node_list if runs else None)
        found[key] = _Nodes(count, listed, node_states(own, live=live[key]))
    return found


def _rows(source: ReadSource, records: Sequence[Any], now: float) -> list[SessionRow]:
    """Rows with job ids, GPU state, requeues, nodes and hyperparameters: five queries for all
    of ``records``."""
    ids = [record.id for record in records if record.id is not None]
    jobs = source.jobs_of(ids)
    gpu = source.gpu_states(ids)
    requeues = source.requeue_counts(ids)
    nodes = _nodes(source, records, jobs)
    shared = source.holds_other_users()
    return [
        session_row(
            record,
            now,
            job_ids=[job.job_id for job in jobs.get(record.id or -1, [])],
            gpu=gpu.get(record.id or -1),
            requeues=requeues.get(record.id or -1, 0),
            nodes=nodes.get(record.id or -1, _Nodes()).count,
            node_list=nodes.get(record.id or -1, _Nodes()).listed,
            node_states=nodes.get(record.id or -1, _Nodes()).states,
            hyperparameters=json.loads(record.hyperparameters_json or "{}"),
            shared=shared,
        )
        for record in records
    ]


def session_rows(
    catalog: Catalog | ReadSource,
    *,
    project: str | None = None,
    cluster: str | None = None,
    limit: int | None = None,
    now: float | None = None,
    sweep: str | None = None,
    owner: str | None = None,
) -> list[SessionRow]:
    """``ps``: submitted sessions, newest first (of ``project``, ``cluster``, ``owner``,
    ``sweep``; ``limit`` rows), from a catalog or any :class:`ReadSource`."""
    source = _source(catalog)
    if sweep is not None:
        records = [
            record
            for record in source.sweep_members(sweep)
            if cluster is None or record.cluster == cluster
        ]
        records = records[:limit] if limit is not None else records
    else:
        records = list(
            source.list_sessions(project=project, cluster=cluster, limit=limit, owner=owner)
        )
    return _rows(source, records, time.time() if now is None else now)


def _source(catalog: Catalog | ReadSource) -> ReadSource:
    """A catalog (it has an engine) is read through :class:`CatalogSource`."""
    if getattr(catalog, "engine", None) is not None:
        return CatalogSource(cast("Catalog", catalog))
    return cast(ReadSource, catalog)


def one_session_row(
    catalog: Catalog | ReadSource, name: str, *, now: float | None = None
) -> SessionRow:
    """The row of session ``name`` (:class:`NotFoundError` if there is none)."""
    source = _source(catalog)
    return _rows(source, [source.get_session(name)], time.time() if now is None else now)[0]


def snapshot_detail(source: ReadSource, session_id: int) -> dict[str, Any]:
    """What ``show`` adds for snapshots, requeues and forks: the job runs (one per Slurm
    start), the lineage (parent and children), the snapshot totals and how many metric points
    a resumed run superseded."""
    from nsml_hpc.snapshots.views import snapshot_summary

    return snapshot_summary(
        runs=source.job_runs(session_id),
        snaps=source.snapshots(session_id),
        parent=source.lineage(session_id),
        children=source.children(session_id),
        superseded=source.superseded_count(session_id),
    )


def session_detail(
    catalog: Catalog | ReadSource, name: str, *, now: float | None = None
) -> dict[str, Any]:
    """Everything ``show`` prints, as JSON-ready data (elapsed time as of ``now``)."""
    from nsml_hpc.catalog.hparam_events import taken_from

    source = _source(catalog)
    record = source.get_session(name)
    assert record.id is not None
    jobs = source.jobs_of([record.id])[record.id]
    nodes = _nodes(source, [record], {record.id: jobs}).get(record.id, _Nodes())
    row = session_row(
        record,
        time.time() if now is None else now,
        job_ids=[job.job_id for job in jobs],
        gpu=source.gpu_states([record.id]).get(record.id),
        requeues=source.requeue_counts([record.id]).get(record.id, 0),
        nodes=nodes.count,
        node_list=nodes.listed,
        node_states=nodes.states,
        shared=source.holds_other_users(),
    )
    allocations = source.allocations(jobs)
    latest = allocations.get(jobs[-1].job_id) if jobs else None
    snapshots = snapshot_detail(source, record.id)
    job_rows = [
        {
            "job_id": job.job_id,
            "cluster": job.cluster,
            "state": job.state,
            "reason": job.reason,
            "exit_code": job.exit_code,
            "submitted_at": job.submitted_at,
            "started_at": job.started_at,
            "ended_at": job.ended_at,
            "node_list": job.node_list,
            "allocation": allocations.get(job.job_id),
        }
        for job in jobs
    ]
    dataset = source.dataset(record.id)
    captures = source.stdout_captures([record.id])
    return {
        **row.to_json(),
        "dataset": None
        if dataset is None
        else {
            "name": dataset.name,
            "version": dataset.version,
            "path": dataset.path,
            "staged": bool(dataset.staged),
        },
        "stdout_capture": None if record.id not in captures else {"pattern": captures[record.id]},
        "hyperparameter_changes": [
            {
                "at": change.at,
                "step": change.step,
                "version": change.version,
                "changes": change.changes,
                "previous": change.previous,
            }
            for change in taken_from(source.hparam_events(record.id))
        ],
        **snapshots,
        "runs": run_rows(job_rows, snapshots["job_runs"]),
        "project": record.project,
        "user": record.user,
        "ingest_problems": source.ingest_problems(record.id),
        "run_dir": record.run_dir,
        "spec": json.loads(record.spec_json),
        "node_states": [node.to_json() for node in nodes.states],
        # What Slurm gave the latest job (sacct), None before the first sync that saw it.
        "allocation": latest,
        "hyperparameters": json.loads(record.hyperparameters_json),
        "submitted_at": record.submitted_at,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "metric_points": record.metric_count,
        "metric_sources": source.metric_sources(record.id),
        "malformed_metric_lines": source.malformed_lines(record.id),
        "non_finite_values": source.non_finite_count(record.id),
        "jobs": job_rows,
        "state_history": [
            {
                "at": change.at,
                "state": change.state,
                "reason": change.reason,
                "job_id": change.job_id,
            }
            for change in source.state_history(record.id)
        ],
        "events": [
            {
                "at": event.at,
                "event": event.kind,
                "job_id": event.job_id,
                **stored_event_fields(event.data_json),
            }
            for event in source.events_of(record.id)
        ],
    }


def run_rows(jobs: list[dict[str, Any]], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``show``'s job table: one row per RUN of each Slurm job (a requeued job id runs again
    with a new restart count), with the job's fields; a job that has not started yet (or
    whose wrapper wrote no events) is one row. The last run of the last job carries the
    job's current Slurm state; earlier runs say how they ended (``requeued``, ...)."""
    rows: list[dict[str, Any]] = []
    for index, job in enumerate(jobs):
        mine = sorted(
            (run for run in runs if run["job_id"] == job["job_id"]),
            key=lambda run: run["restart_count"],
        )
        if not mine:
            rows.append({**job, "run": 0})
            continue
        for position, run in enumerate(mine):
            current = position == len(mine) - 1 and index == len(jobs) - 1
            rows.append(
                {
                    **job,
                    "run": run["restart_count"],
                    "state": job["state"] if current else (run["outcome"] or "ended"),
                    "reason": job["reason"] if current else None,
                    "exit_code": job["exit_code"]
                    if current and job["exit_code"] is not None
                    else run["exit_code"],
                    "submitted_at": job["submitted_at"] if position == 0 else None,
                    "started_at": run["started_at"],
                    "ended_at": (run["ended_at"] or job["ended_at"])
                    if current
                    else run["ended_at"],
                    "node_list": run["host"] or job["node_list"],
                }
            )
    return rows


def run_dir_note(workspace: Any, name: str) -> str | None:
    """For another user's session: a note when its run directory cannot be read by the
    caller (logs, snapshot files), what the catalog holds being shown all the same."""
    from nsml_hpc.catalog.sessions import get_session
    from nsml_hpc.errors import NsmlError
    from nsml_hpc.job.layout import SESSION_FILE

    record = get_session(workspace.catalog, name)
    if record.owner == workspace.catalog.user:
        return None
    try:
        workspace.backend_for(record.cluster).files.read_from(
            f"{record.run_dir}/{SESSION_FILE}", 0, 1
        )
    except NsmlError as exc:
        return (
            f"{record.owner}'s run directory is not readable by you ({exc}); state and "
            "metrics are the catalog's, kept current by its owner's syncs"
        )
    return None


def ingest_problems(catalog: Catalog, session_id: int) -> list[dict[str, Any]]:
    """The lines ingestion refused (the first few per file), oldest first."""
    from sqlmodel import col, select

    from nsml_hpc.catalog.team_models import IngestProblem

    with catalog.session() as db:
        rows = db.exec(
            select(IngestProblem)
            .where(IngestProblem.session_id == session_id)
            .order_by(col(IngestProblem.id))
        ).all()
    return [{"file": row.file, "line": row.line, "problem": row.problem} for row in rows]
