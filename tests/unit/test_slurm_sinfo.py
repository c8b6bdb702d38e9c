"""The sinfo parsers, on output captured from the real sandbox (and one hand-written sample)."""

from __future__ import annotations

import pytest

from nsml_hpc.slurm.sinfo import (
    PartitionGpus,
    gpu_count,
    major_minor,
    parse_sinfo_nodes,
    parse_slurm_version,
    partitions_gpus,
)


def test_real_sinfo_version_is_read(data_text):
    assert parse_slurm_version(data_text("sinfo_version.txt")) == "22.05.8"


@pytest.mark.parametrize(
    ("text", "version"),
    [("slurm 24.11.1\n", "24.11.1"), ("slurm-wlm 23.02", "23.02"), ("no version here", None)],
)
def test_version_forms(text, version):
    assert parse_slurm_version(text) == version


@pytest.mark.parametrize(
    ("version", "pair"), [("22.05.8", (22, 5)), ("25.11.2", (25, 11)), ("x", None)]
)
def test_major_minor(version, pair):
    assert major_minor(version) == pair


def test_real_node_with_two_of_four_gpus_in_use(data_text):
    (line,) = parse_sinfo_nodes(data_text("sinfo_nodes_gpus_in_use.txt"))
    assert (line.partition, line.default, line.node, line.state) == ("debug", True, "vm", "mixed")
    assert (line.gpus, line.gpus_used) == (4, 2)
    assert partitions_gpus([line]) == [
        PartitionGpus(name="debug", default=True, nodes=1, usable_nodes=1, gpus=4, free_gpus=2)
    ]


@pytest.mark.parametrize(
    ("gres", "count"),
    [
        ("gpu:4", 4),
        ("gpu:a100:4(S:0-1)", 4),
        ("gpu:v100:1(IDX:0,2),gpu:t4:0(IDX:N/A)", 1),
        ("gpu:v100:2(S:0),gpu:t4:1(S:1)", 3),
        ("gpu", 1),
        ("shard:8,gpu:2", 2),
        ("(null)", 0),
        ("N/A", 0),
        ("", 0),
        ("gpu:٣", 0),
    ],
)
def test_gpu_count_in_gres(gres, count):
    assert gpu_count(gres) == count


def test_partitions_share_nodes_and_unusable_nodes_have_no_free_gpus(data_text):
    lines = parse_sinfo_nodes(data_text("sinfo_nodes_handwritten.txt"))
    assert len(lines) == 7  # the warning line is skipped
    by_name = {part.name: part for part in partitions_gpus(lines)}
    assert list(by_name) == ["gpu", "mixed", "cpu"]
    # gpu: g01 full, g02 has 3 free, g03 drained and g04 not responding count for nothing free
    assert by_name["gpu"] == PartitionGpus("gpu", True, 4, 2, 16, 3)
    assert by_name["mixed"] == PartitionGpus("mixed", False, 2, 2, 7, 5)
    assert by_name["cpu"] == PartitionGpus("cpu", False, 1, 1, 0, 0)


def test_a_node_that_does_not_respond_is_not_usable(data_text):
    lines = {
        line.node: line for line in parse_sinfo_nodes(data_text("sinfo_nodes_handwritten.txt"))
    }
    assert (lines["g04"].state, lines["g04"].responding, lines["g04"].usable) == (
        "idle",
        False,
        False,
    )
    assert (lines["g03"].state, lines["g03"].usable) == ("drained", False)
    assert lines["c01"].usable
