"""Read models shared by the CLI and the TUI: what ``ps`` and ``show`` display, as plain data."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.gpu import gpu_states
from nsml_hpc.catalog.metrics import load_cursors, metric_sources
from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.catalog.sessions import events_of, get_session, jobs_of, list_sessions, state_history
from nsml_hpc.catalog.snapshots import requeue_counts
from nsml_hpc.job.layout import METRICS_FILE
from nsml_hpc.runfiles.idle import IdleState, idle_for
from nsml_hpc.sessions.nodes import (
    NodeState,
    allocated_nodes,
    node_states,
    node_summary,
    task_events,
)
from nsml_hpc.slurm.states import TERMINAL_STATES, SessionState
from nsml_hpc.snapshots.views import snapshot_detail


def format_state(state: str, reason: str | None, exit_code: int | None) -> str:
    """``PENDING (Resources)``, ``FAILED (exit 3)``, ``RUNNING``."""
    if state == SessionState.FAILED and exit_code is not None:
        return f"FAILED (exit {exit_code})"
    if reason and state not in TERMINAL_STATES:
        return f"{state} ({reason})"
    return state


@dataclass(frozen=True)
class SessionRow:
    name: str
    cluster: str
    state: str
    reason: str | None
    exit_code: int | None
    gpus: int
    elapsed_s: float | None
    last_step: int | None
    last_metrics: dict[str, float | None]
    job_ids: list[str]
    memo: str
    created_at: float
    gpu_util: float | None = None  # mean utilisation of the last nvidia-smi sample
    gpu_idle_s: float = 0.0  # how long every GPU of the session has sat at 0 %
    requeues: int = 0
    nodes: int = 1  # nodes asked for (gpus is per node)
    node_list: str | None = None  # Slurm's list of the latest job's nodes
    node_summary: str = ""  # per-node state of a multi-node launch: "duo1 running, duo2 ok"

    @property
    def gpus_text(self) -> str:
        """``4``, or ``2x4`` for 4 GPUs on each of 2 nodes."""
        return str(self.gpus) if self.nodes == 1 else f"{self.nodes}x{self.gpus}"

    @property
    def state_text(self) -> str:
        return format_state(self.state, self.reason, self.exit_code)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["state_text"] = self.state_text
        data["gpus_text"] = self.gpus_text
        return data


def elapsed(record: SessionRecord, now: float) -> float | None:
    """Slurm's elapsed time, advanced by the wall clock while the job runs."""
    if record.state == SessionState.RUNNING and record.started_at:
        return max(record.elapsed_s or 0.0, now - record.started_at)
    return record.elapsed_s


def shown_resources(resources: dict[str, Any]) -> dict[str, Any]:
    """The resources a session asked for, without the unset ones (GPUs as ``a100:4``)."""
    shown = {k: v for k, v in resources.items() if v not in (None, 0, False, [], "")}
    if resources.get("gpu_type") and "gpus" in shown:
        shown["gpus"] = f"{resources['gpu_type']}:{resources['gpus']}"
        shown.pop("gpu_type", None)
    if "sbatch_args" in shown:
        shown["sbatch_args"] = " ".join(shown["sbatch_args"])
    return shown


def requested_nodes(record: SessionRecord) -> int:
    try:
        nodes = json.loads(record.spec_json).get("resources", {}).get("nodes", 1)
    except (ValueError, AttributeError):
        return 1
    return nodes if isinstance(nodes, int) and nodes > 0 else 1


def _nodes_of(record: SessionRecord, events: list[dict[str, Any]]) -> list[NodeState]:
    return node_states(events, live=record.state not in TERMINAL_STATES)


def _row(
    record: SessionRecord,
    job_ids: list[str],
    now: float,
    gpu: IdleState | None = None,
    requeues: int = 0,
    node_list: str | None = None,
    nodes: list[NodeState] | None = None,
) -> SessionRow:
    live_gpu = gpu if gpu is not None and record.state == SessionState.RUNNING else None
    return SessionRow(
        name=record.name,
        cluster=record.cluster,
        state=record.state,
        reason=record.reason,
        exit_code=record.exit_code,
        gpus=record.gpus,
        elapsed_s=elapsed(record, now),
        last_step=record.last_step,
        last_metrics=json.loads(record.last_metrics_json or "{}"),
        job_ids=job_ids,
        memo=record.memo,
        created_at=record.created_at,
        gpu_util=live_gpu.last_util if live_gpu else None,
        gpu_idle_s=idle_for(live_gpu, now) if live_gpu else 0.0,
        requeues=requeues,
        nodes=requested_nodes(record),
        node_list=node_list,
        node_summary=node_summary(nodes or []),
    )


def session_rows(
    catalog: Catalog,
    *,
    project: str | None = None,
    cluster: str | None = None,
    limit: int | None = None,
) -> list[SessionRow]:
    now = time.time()
    records = list_sessions(catalog, project=project, cluster=cluster, limit=limit)
    ids = [record.id for record in records if record.id is not None]
    jobs = jobs_of(catalog, ids)
    gpu = gpu_states(catalog, ids)
    requeues = requeue_counts(catalog, ids)
    many = [r.id for r in records if r.id is not None and requested_nodes(r) > 1]
    tasks = task_events(catalog, many)
    rows = []
    for record in records:
        key = record.id or -1
        session_jobs = jobs.get(key, [])
        nodes = _nodes_of(record, tasks[key]) if key in tasks else []
        rows.append(
            _row(
                record,
                [job.job_id for job in session_jobs],
                now,
                gpu.get(key),
                requeues.get(key, 0),
                allocated_nodes(tasks.get(key, []))
                or (session_jobs[-1].node_list if session_jobs else None),
                nodes,
            )
        )
    return rows


def session_detail(catalog: Catalog, name: str, *, now: float | None = None) -> dict[str, Any]:
    """Everything ``show`` prints, as JSON-ready data (elapsed time as of ``now``)."""
    record = get_session(catalog, name)
    assert record.id is not None
    jobs = jobs_of(catalog, [record.id])[record.id]
    gpu = gpu_states(catalog, [record.id]).get(record.id)
    requeues = requeue_counts(catalog, [record.id]).get(record.id, 0)
    events = task_events(catalog, [record.id])[record.id]
    nodes = _nodes_of(record, events)
    row = _row(
        record,
        [job.job_id for job in jobs],
        time.time() if now is None else now,
        gpu,
        requeues,
        allocated_nodes(events) or (jobs[-1].node_list if jobs else None),
        nodes,
    )
    cursor = load_cursors(catalog, [record.id]).get((record.id, METRICS_FILE))
    return {
        **row.to_json(),
        **snapshot_detail(catalog, record.id),
        "project": record.project,
        "user": record.user,
        "run_dir": record.run_dir,
        "spec": json.loads(record.spec_json),
        "node_states": [node.to_json() for node in nodes],
        "hyperparameters": json.loads(record.hyperparameters_json),
        "submitted_at": record.submitted_at,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "metric_points": record.metric_count,
        "metric_sources": metric_sources(catalog, record.id),
        "malformed_metric_lines": cursor.malformed if cursor else 0,
        "jobs": [
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
            }
            for job in jobs
        ],
        "state_history": [
            {
                "at": change.at,
                "state": change.state,
                "reason": change.reason,
                "job_id": change.job_id,
            }
            for change in state_history(catalog, record.id)
        ],
        "events": [
            {
                "at": event.at,
                "event": event.kind,
                "job_id": event.job_id,
                **json.loads(event.data_json),
            }
            for event in events_of(catalog, record.id)
        ],
    }
