"""What the views say about a multi-node session (per-node state from the task events, the
summary ps shows) and the pre-submit check of nodes and GPU types against sinfo (the
captured two-node sample and the hand-written typed one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nsml_hpc.job.spec import Resources, SessionSpec
from nsml_hpc.sessions.nodes import NodeState, node_states, node_summary
from nsml_hpc.slurm.sinfo import node_rows, parse_sinfo, per_node_text
from nsml_hpc.submit.fit import needs_check, problem


def _task(kind: str, host: str, node: int, task: int, **extra: Any) -> dict[str, Any]:
    return {"event": kind, "host": host, "node": node, "task": task, **extra}


RUN = [
    {"event": "started", "restart_count": 0},
    _task("task_started", "duo1", 0, 0, cuda_visible_devices="0,1"),
    _task("task_started", "duo1", 0, 1, cuda_visible_devices="0,1"),
    _task("task_started", "duo2", 1, 2, cuda_visible_devices="0,1"),
    _task("task_started", "duo2", 1, 3, cuda_visible_devices="0,1"),
]


def test_nodes_run_while_their_tasks_run() -> None:
    states = node_states(RUN, live=True)
    assert [(s.host, s.node, s.tasks, s.running, s.state) for s in states] == [
        ("duo1", 0, 2, 2, "running"),
        ("duo2", 1, 2, 2, "running"),
    ]
    assert states[0].cuda_visible_devices == "0,1"
    assert node_summary(states) == "duo1 running, duo2 running"


def test_a_node_whose_task_failed_says_its_exit_code() -> None:
    events = [
        *RUN,
        _task("task_ended", "duo1", 0, 0, exit_code=0),
        _task("task_ended", "duo1", 0, 1, exit_code=0),
        _task("task_ended", "duo2", 1, 2, exit_code=3),
    ]
    states = node_states(events, live=False)
    assert [(s.host, s.state, s.exit_code) for s in states] == [
        ("duo1", "ok", 0),
        ("duo2", "exit 3", 3),
    ]


def test_only_the_latest_run_counts_and_killed_tasks_read_stopped() -> None:
    first = [*RUN, _task("task_ended", "duo2", 1, 2, exit_code=143)]
    second = [{"event": "started", "restart_count": 1}, _task("task_started", "duo1", 0, 0)]
    assert [(s.host, s.state) for s in node_states(first + second, live=False)] == [
        ("duo1", "stopped")
    ]
    assert node_states([{"event": "started"}], live=True) == []


def test_a_summary_of_many_nodes_counts_them() -> None:
    states = [
        NodeState(host=f"n{i}", node=i, tasks=1, running=1, state="running") for i in range(6)
    ]
    states[4] = NodeState(host="n4", node=4, tasks=1, running=0, state="exit 1", exit_code=1)
    assert node_summary(states) == "6 nodes: 5 running, 1 exit 1 (n4)"


def _spec(**resources: Any) -> SessionSpec:
    return SessionSpec(project="p", script="t.py", resources=Resources(**resources))


def test_more_nodes_than_the_partition_has_is_named_with_its_nodes(
    data_text: Callable[[str], str],
) -> None:
    nodes = parse_sinfo(data_text("sinfo_duo_nodes.txt"))
    assert problem(_spec(nodes=2, gpus=2), nodes, "debug") is None
    assert problem(_spec(nodes=3), nodes, "debug") == (
        "--nodes 3: partition debug has 2 node(s) (duo1, duo2)"
    )
    assert problem(_spec(nodes=2, gpus=3), nodes, "debug") == (
        "--nodes 2 with 3 GPU(s) each: partition debug has 0 node(s) with that many "
        "(duo1, duo2: duo1 2, duo2 2)"
    )
    assert problem(_spec(nodes=5), nodes, "nosuch") is None  # sbatch names that itself


def test_a_gpu_type_no_node_has_is_refused_with_the_types_there(
    data_text: Callable[[str], str],
) -> None:
    untyped = parse_sinfo(data_text("sinfo_duo_nodes.txt"))
    assert problem(_spec(nodes=2, gpus=2, gpu_type="a100"), untyped, "debug") == (
        "--gpus a100:2: no node of partition debug has GPUs of type a100 "
        "(types there: none: its GPUs have no type)"
    )
    typed = parse_sinfo(data_text("sinfo_nodes_handwritten.txt"))
    partition = next(node.partition for node in typed if node.gpu_types)
    types = sorted({t for node in typed if node.partition == partition for t in node.gpu_types})
    message = problem(_spec(gpus=1, gpu_type="nosuch"), typed, partition)
    assert message is not None and f"types there: {', '.join(types)}" in message
    assert problem(_spec(gpus=1, gpu_type=types[0]), typed, partition) is None


@pytest.mark.parametrize(
    ("resources", "needed"),
    [({}, False), ({"gpus": 4}, False), ({"nodes": 2}, True), ({"gpus": 1, "gpu_type": "a"}, True)],
)
def test_the_check_asks_sinfo_only_when_it_can_tell_something(
    resources: dict[str, Any], needed: bool
) -> None:
    assert needs_check(_spec(**resources)) is needed


def test_gpus_lists_the_gpus_of_each_node(data_text: Callable[[str], str]) -> None:
    nodes = parse_sinfo(data_text("sinfo_duo_nodes.txt"))
    assert per_node_text(nodes, "debug") == "2"
    assert [(row["node"], row["total"], row["free"]) for row in node_rows(nodes)] == [
        ("duo1", 2, 2),
        ("duo2", 2, 2),
    ]


@pytest.mark.parametrize(
    ("gpus", "nodes", "shown"),
    [(0, 2, "0"), (0, 1, "0"), (4, 1, "4"), (8, 2, "2x4"), (128, 16, "16x8"), (3, 2, "3")],
)
def test_a_rows_gpus_read_nodes_x_per_node_and_cpu_only_reads_0(
    gpus: int, nodes: int, shown: str
) -> None:
    from nsml_hpc.sessions.views import SessionRow

    row = SessionRow(
        id=1,
        name="p/1",
        project="p",
        cluster="duo",
        user="alice",
        state="RUNNING",
        reason=None,
        exit_code=None,
        gpus=gpus,
        elapsed_s=None,
        started_at=None,
        last_step=None,
        last_metrics={},
        memo="",
        created_at=0.0,
        nodes=nodes,
    )
    assert row.gpus_text == shown
