"""The sinfo parser (cluster view, ``cluster test``) and the Slurm version parsers, on output
captured from the real sandbox and on hand-written shapes of bigger sites."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nsml_hpc.slurm.sinfo import (
    node_state_usable,
    parse_sinfo,
    partition_summary,
    sinfo_command,
)
from nsml_hpc.slurm.version import major_minor, parse_slurm_version


def test_sinfo_command_asks_one_line_per_node_and_partition() -> None:
    argv = sinfo_command()
    assert argv[:3] == ["sinfo", "--noheader", "--Node"]
    assert argv[3] == "--Format=NodeHost:|,Partition:|,StateLong:|,CPUsState:|,Gres:|,GresUsed:|"


def test_captured_busy_node_has_three_of_four_gpus_allocated(
    data_text: Callable[[str], str],
) -> None:
    nodes = parse_sinfo(data_text("sinfo_gpus_busy.txt"))
    assert len(nodes) == 1
    node = nodes[0]
    assert (node.node, node.partition, node.is_default, node.state) == (
        "vm",
        "debug",
        True,
        "mixed",
    )
    assert (node.gpus_total, node.gpus_used, node.cpus_allocated, node.cpus_total) == (4, 3, 2, 8)
    [debug] = partition_summary(nodes)
    assert (debug.gpus_total, debug.gpus_allocated, debug.gpus_idle) == (4, 3, 1)
    assert debug.gpus_unavailable == 0


def test_partitions_sum_typed_gpus_and_leave_out_drained_and_dead_nodes(
    data_text: Callable[[str], str],
) -> None:
    nodes = parse_sinfo(data_text("sinfo_handwritten_partitions.txt"))
    parts = {part.name: part for part in partition_summary(nodes)}
    assert list(parts) == ["gpu", "cpu", "long"]  # default first, then by name
    gpu = parts["gpu"]
    assert (gpu.gpus_total, gpu.gpus_allocated, gpu.gpus_idle, gpu.gpus_unavailable) == (
        12,
        7,
        1,
        4,
    )
    assert (gpu.nodes, gpu.nodes_usable, gpu.gpu_types) == (3, 2, ("a100",))
    long = parts["long"]
    assert (long.gpus_total, long.gpus_allocated, long.gpus_idle, long.gpus_unavailable) == (
        10,
        1,
        3,
        6,
    )
    assert long.gpu_types == ("a100", "v100", "t4")
    cpu = parts["cpu"]
    assert (cpu.gpus_total, cpu.gpus_idle, cpu.cpus_total) == (0, 0, 128)


@pytest.mark.parametrize(
    ("state", "usable"),
    [
        ("idle", True),
        ("mixed", True),
        ("allocated", True),
        ("idle*", False),
        ("idle~", False),
        ("drained", False),
        ("draining", False),
        ("down", False),
        ("mixed-", False),
        ("", False),
    ],
)
def test_node_state_usable(state: str, usable: bool) -> None:
    assert node_state_usable(state) is usable


def test_lines_of_other_shapes_are_skipped() -> None:
    text = "sinfo: error: something\nvm|debug*|idle|0/8/0/8|gpu:4|gpu:0|\n|||\n"
    assert [node.node for node in parse_sinfo(text)] == ["vm"]


def test_real_sinfo_version_is_read(data_text: Callable[[str], str]) -> None:
    assert parse_slurm_version(data_text("sinfo_version.txt")) == "22.05.8"


@pytest.mark.parametrize(
    ("text", "version"),
    [("slurm 24.11.1\n", "24.11.1"), ("slurm-wlm 23.02", "23.02"), ("no version here", None)],
)
def test_version_forms(text: str, version: str | None) -> None:
    assert parse_slurm_version(text) == version


@pytest.mark.parametrize(
    ("version", "pair"), [("22.05.8", (22, 5)), ("25.11.2", (25, 11)), ("x", None)]
)
def test_major_minor(version: str, pair: tuple[int, int] | None) -> None:
    assert major_minor(version) == pair


def test_real_node_in_two_partitions_with_two_of_four_gpus_in_use(
    data_text: Callable[[str], str],
) -> None:
    nodes = parse_sinfo(data_text("sinfo_nodes_gpus_in_use.txt"))
    assert {(node.partition, node.is_default) for node in nodes} == {
        ("debug", True),
        ("small", False),
    }
    assert {(node.node, node.state, node.gpus_total, node.gpus_used) for node in nodes} == {
        ("vm", "mixed", 4, 2)
    }
    debug = partition_summary(nodes)[0]
    assert (debug.name, debug.nodes, debug.nodes_usable) == ("debug", 1, 1)
    assert (debug.gpus_total, debug.gpus_allocated, debug.gpus_idle) == (4, 2, 2)


def test_partitions_share_nodes_and_unusable_nodes_have_no_idle_gpus(
    data_text: Callable[[str], str],
) -> None:
    nodes = parse_sinfo(data_text("sinfo_nodes_handwritten.txt"))
    assert len(nodes) == 7  # the warning line is skipped
    parts = {part.name: part for part in partition_summary(nodes)}
    assert list(parts) == ["gpu", "cpu", "mixed"]
    # gpu: g01 full, g02 has 3 idle, g03 drained and g04 not responding count for nothing idle
    gpu = parts["gpu"]
    assert (gpu.nodes, gpu.nodes_usable, gpu.gpus_total, gpu.gpus_allocated) == (4, 2, 16, 5)
    assert (gpu.gpus_idle, gpu.gpus_unavailable) == (3, 8)
    mixed = parts["mixed"]
    assert (mixed.nodes, mixed.nodes_usable, mixed.gpus_total, mixed.gpus_idle) == (2, 2, 7, 5)
    cpu = parts["cpu"]
    assert (cpu.nodes, cpu.nodes_usable, cpu.gpus_total, cpu.gpus_idle) == (1, 1, 0, 0)


def test_a_node_that_does_not_respond_is_not_usable(data_text: Callable[[str], str]) -> None:
    nodes = {
        (node.node, node.partition): node
        for node in parse_sinfo(data_text("sinfo_nodes_handwritten.txt"))
    }
    assert (nodes["g04", "gpu"].state, nodes["g04", "gpu"].usable) == ("idle*", False)
    assert (nodes["g03", "gpu"].state, nodes["g03", "gpu"].usable) == ("drained", False)
    assert nodes["c01", "cpu"].usable
