"""The nodes of a multi-node session and how each is doing, from the task wrappers' events.

In a launch mode other than plain, srun starts a task wrapper on every node (once per rank in
the srun modes, once per node for torchrun); each records ``task_started`` (host, node index,
task, CUDA_VISIBLE_DEVICES) and ``task_ended`` (exit code), relayed into events.jsonl by the
job wrapper (:mod:`nsml_hpc.job.task`). A node's state is that of its tasks in the job's
latest run (the events after the last ``started``): running while one runs, ``ok`` when all
ended with 0, ``exit N`` (the highest code) when one failed, ``stopped`` when the session
ended without the task saying so (killed with the job). The session's own state stays the
job's, from sacct.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nsml_hpc.catalog.engine import Catalog

TASK_EVENTS = ("started", "task_started", "task_ended")
LISTED_NODES = 4  # a summary names at most this many nodes, then counts


@dataclass(frozen=True)
class NodeState:
    host: str
    node: int | None  # SLURM_NODEID: the node's index in the allocation
    tasks: int
    running: int
    state: str  # running | ok | exit N | stopped
    exit_code: int | None = None
    cuda_visible_devices: str | None = None
    task_ids: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Node:
    host: str
    node: int | None
    started: dict[int, str | None] = field(default_factory=dict)  # task -> devices
    ended: dict[int, int] = field(default_factory=dict)  # task -> exit code


def _latest_run(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events since the job wrapper's last ``started`` (the current or last run)."""
    last = max((i for i, e in enumerate(events) if e.get("event") == "started"), default=-1)
    return list(events[last + 1 :])


def node_states(events: Sequence[dict[str, Any]], *, live: bool) -> list[NodeState]:
    """Per-node state from a session's events (oldest first); empty for a plain launch."""
    nodes: dict[str, _Node] = {}
    for event in _latest_run(events):
        kind = event.get("event")
        if kind not in ("task_started", "task_ended"):
            continue
        host = str(event.get("host") or "?")
        index = event.get("node")
        entry = nodes.setdefault(host, _Node(host, index if isinstance(index, int) else None))
        task = event.get("task")
        task_id = task if isinstance(task, int) else len(entry.started)
        if kind == "task_started":
            devices = event.get("cuda_visible_devices")
            entry.started[task_id] = devices if isinstance(devices, str) else None
        else:
            code = event.get("exit_code")
            entry.ended[task_id] = code if isinstance(code, int) else -1
    return [_state(entry, live) for entry in sorted(nodes.values(), key=_order)]


def _order(entry: _Node) -> tuple[int, str]:
    return (entry.node if entry.node is not None else 1 << 30, entry.host)


def _state(entry: _Node, live: bool) -> NodeState:
    tasks = sorted(set(entry.started) | set(entry.ended))
    running = [task for task in tasks if task not in entry.ended]
    worst = max(entry.ended.values(), default=None)
    if worst not in (None, 0):
        state = f"exit {worst}"
    elif running:
        state = "running" if live else "stopped"
    else:
        state = "ok"
    devices = sorted({d for d in entry.started.values() if d is not None})
    return NodeState(
        host=entry.host,
        node=entry.node,
        tasks=len(tasks),
        running=len(running) if live else 0,
        state=state,
        exit_code=worst,
        cuda_visible_devices=" ".join(devices) or None,
        task_ids=tasks,
    )


def allocated_nodes(events: Sequence[dict[str, Any]]) -> str | None:
    """Slurm's node list of the latest run, as the job wrapper saw it (``SLURM_JOB_NODELIST``,
    in its ``started`` event). Steadier than sacct's NodeList, which reads only the first node
    for a moment after a multi-node job ends."""
    for event in reversed(events):
        if event.get("event") == "started":
            nodes = event.get("nodes")
            return nodes if isinstance(nodes, str) and nodes else None
    return None


def node_summary(states: Sequence[NodeState]) -> str:
    """``duo1 running, duo2 running``; beyond a few nodes, counts per state."""
    if not states:
        return ""
    if len(states) <= LISTED_NODES:
        return ", ".join(f"{s.host} {s.state}" for s in states)
    counts: dict[str, list[str]] = {}
    for s in states:
        counts.setdefault(s.state, []).append(s.host)
    parts = []
    for state, hosts in sorted(counts.items(), key=lambda item: -len(item[1])):
        named = f" ({', '.join(hosts[:2])}{', ...' if len(hosts) > 2 else ''})"
        parts.append(f"{len(hosts)} {state}" + (named if state not in ("running", "ok") else ""))
    return f"{len(states)} nodes: " + ", ".join(parts)


def requested_nodes(spec_json: str | None) -> int:
    """How many nodes a session asked for, from its spec (1 when it says nothing usable)."""
    try:
        nodes = json.loads(spec_json or "{}").get("resources", {}).get("nodes", 1)
    except (ValueError, AttributeError):
        nodes = 1
    return nodes if isinstance(nodes, int) and nodes > 0 else 1


def spec_jsons(catalog: Catalog, session_ids: Iterable[int]) -> dict[int, str]:
    """The spec of each session, as stored (one query)."""
    from sqlmodel import col, select

    from nsml_hpc.catalog.models import SessionRecord

    ids = list(session_ids)
    if not ids:
        return {}
    with catalog.session() as db:
        rows = db.exec(
            select(SessionRecord.id, SessionRecord.spec_json).where(col(SessionRecord.id).in_(ids))
        ).all()
    return {session_id: spec_json for session_id, spec_json in rows if session_id is not None}


def task_events(catalog: Catalog, session_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """The ``started``/``task_*`` events of many sessions, oldest first (one query)."""
    from sqlmodel import col, select

    from nsml_hpc.catalog.models import EventRecord

    ids = list(session_ids)
    found: dict[int, list[dict[str, Any]]] = {session_id: [] for session_id in ids}
    if not ids:
        return found
    with catalog.session() as db:
        rows = db.exec(
            select(EventRecord)
            .where(col(EventRecord.session_id).in_(ids), col(EventRecord.kind).in_(TASK_EVENTS))
            .order_by(col(EventRecord.id))
        ).all()
    for row in rows:
        found[row.session_id].append({"event": row.kind, **json.loads(row.data_json or "{}")})
    return found
