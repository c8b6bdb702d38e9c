"""The sinfo parser behind the cluster view, on output captured from the sandbox and on
hand-written shapes of bigger sites."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nsml_hpc.slurm.sinfo import (
    gpus_in_gres,
    node_state_usable,
    parse_sinfo,
    partition_summary,
    sinfo_command,
    split_gres,
)


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
    ("text", "expected"),
    [
        ("gpu:4", (4, ())),
        ("gpu:0", (0, ())),
        ("gpu:(null):2(IDX:0-1)", (2, ())),
        ("gpu:a100:3(IDX:0,2-3)", (3, ("a100",))),
        ("gpu:a100:2(S:0-1),gpu:v100:2", (4, ("a100", "v100"))),
        ("gpu:4,mps:100", (4, ())),
        ("(null)", (0, ())),
        ("N/A", (0, ())),
        ("", (0, ())),
        ("gpu:lots", (0, ())),
    ],
)
def test_gpus_in_gres_reads_every_shape(text: str, expected: tuple[int, tuple[str, ...]]) -> None:
    assert gpus_in_gres(text) == expected


def test_split_gres_keeps_commas_inside_parentheses() -> None:
    assert split_gres("gpu:a100:3(IDX:0,2-3),mps:0") == ["gpu:a100:3(IDX:0,2-3)", "mps:0"]


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
