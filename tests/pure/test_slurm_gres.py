"""The one GRES/TRES parser family: every spelling Slurm (squeue, sinfo, sacct) and pyslurm use,
on hand-written shapes and on the output captured from the sandbox in tests/data/."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nsml_hpc.slurm.gres import (
    Gres,
    gpu_count,
    gpu_types,
    gpus_in_gres,
    gpus_in_tres,
    gres_text,
    parse_gres,
    parse_tres,
    split_gres,
)
from nsml_hpc.slurm.sacct import SACCT_FIELDS
from nsml_hpc.slurm.sinfo import SINFO_FIELDS
from nsml_hpc.slurm.user_queue import QUEUE_FIELDS


@pytest.mark.parametrize(
    ("text", "gpus", "types"),
    [
        # sinfo Gres / GresUsed
        ("gpu:4", 4, ()),
        ("gpu:0", 0, ()),
        ("gpu:(null):2(IDX:0-1)", 2, ()),
        ("gpu:a100:3(IDX:0,2-3)", 3, ("a100",)),
        ("gpu:a100:2(S:0-1),gpu:v100:2", 4, ("a100", "v100")),
        ("gpu:4,mps:100", 4, ()),
        ("(null)", 0, ()),
        ("N/A", 0, ()),
        ("", 0, ()),
        ("gpu:lots", 0, ()),
        ("gpu", 1, ()),
        ("shard:8,gpu:2", 2, ()),
        ("gpu:v100:1(IDX:0,2),gpu:t4:0(IDX:N/A)", 1, ("v100", "t4")),
        ("gpu:\u0663", 0, ()),  # an Arabic-Indic three: isdigit() but not a Slurm count
        # squeue %b (and the GRES pyslurm gives)
        ("gres:gpu:2", 2, ()),
        ("gres/gpu:4", 4, ()),
        ("gres:gpu:a100:3", 3, ("a100",)),
        ("gres/gpu:a100:2", 2, ("a100",)),
        ("gres:gpu:1,gres:mps:50", 1, ()),
        ("mps:100", 0, ()),
    ],
)
def test_gpus_and_types_in_every_gres_spelling(
    text: str, gpus: int, types: tuple[str, ...]
) -> None:
    items = parse_gres(text)
    assert gpus_in_gres(text) == gpus
    assert gpu_types(items) == types


def test_a_gres_list_without_gpus_has_no_gpu_count() -> None:
    assert gpu_count(parse_gres("N/A")) is None
    assert gpu_count(parse_gres("mps:100")) is None
    assert gpu_count(parse_gres("gpu:0")) == 0


def test_items_keep_name_type_and_count() -> None:
    assert parse_gres("gres/gpu:a100:2,mps:100,gpu,gpu:(null):3(IDX:0-2)") == [
        Gres("gpu", "a100", 2),
        Gres("mps", None, 100),
        Gres("gpu", None, 1),
        Gres("gpu", None, 3),
    ]


def test_split_gres_keeps_commas_inside_parentheses() -> None:
    assert split_gres("gpu:a100:3(IDX:0,2-3),mps:0") == ["gpu:a100:3(IDX:0,2-3)", "mps:0"]


@pytest.mark.parametrize(
    ("tres", "gpus"),
    [
        ("billing=1,cpu=1,gres/gpu=2,node=1", 2),
        ("billing=1,cpu=1,node=1", None),
        ("", None),
        ("cpu=8,gres/gpu:a100=2,node=1", 2),
        ("cpu=8,gres/gpu:a100=2,gres/gpu:v100=1", 3),
        ("cpu=8,gres/gpu=4,gres/gpu:a100=4", 4),  # the total and its type: counted once
        ("gres/gpu:a100=4,gres/gpu=4", 4),
        ("gres/gpumem=40G,gres/gpu=1", 1),
        ("gres/gpu=", None),
        ("gres/gpu=\u0663", None),
    ],
)
def test_gpu_count_is_read_from_tres(tres: str, gpus: int | None) -> None:
    assert gpus_in_tres(tres) == gpus


def test_tres_entries_that_are_not_gres_are_left_out() -> None:
    assert parse_tres("billing=1,cpu=8,mem=4G,node=1,gres/gpu=2,gres/gpu:a100=2") == [
        Gres("gpu", None, 2),
        Gres("gpu", "a100", 2),
    ]


@pytest.mark.parametrize(
    "spelling",
    ["gpu:2", "gres:gpu:2", "gres/gpu:2", "gpu:a100:2", "gres/gpu:a100:2(IDX:0-1)"],
)
def test_every_spelling_of_two_gpus_is_two(spelling: str) -> None:
    assert gpus_in_gres(spelling) == 2
    assert gpus_in_tres("cpu=1,gres/gpu=2,node=1") == 2


def test_pyslurm_gres_becomes_gres_text() -> None:
    assert gres_text({"gpu:a100": 4, "mps": 100}) == "gpu:a100:4,mps:100"
    assert gres_text("gpu:2") == "gpu:2"
    assert gres_text(None) == ""
    assert gpus_in_gres(gres_text({"gpu": 2})) == 2


# --- captured output ------------------------------------------------------------------------


def _column(text: str, fields: tuple[str, ...], field: str) -> list[str]:
    index = fields.index(field)
    return [line.split("|")[index] for line in text.splitlines() if line.count("|") >= index]


def test_captured_squeue_gres_requests(data_text: Callable[[str], str]) -> None:
    asked = _column(data_text("squeue_user_queue.txt"), QUEUE_FIELDS, "%b")
    assert [gpus_in_gres(text) for text in asked] == [1, 2, 4]
    pending = [line.split("|")[3] for line in data_text("squeue_pending.txt").splitlines()]
    assert [gpus_in_gres(text) for text in pending] == [2, 2, 2]
    finished = [line.split("|")[3] for line in data_text("squeue_finished.txt").splitlines()]
    assert {gpu_count(parse_gres(text)) for text in finished} <= {None, 2}


def test_captured_sacct_alloc_tres(data_text: Callable[[str], str]) -> None:
    running = _column(data_text("sacct_running_pending.txt"), SACCT_FIELDS, "AllocTRES")
    assert [gpus_in_tres(text) for text in running] == [2, 2, None]
    mixed = _column(data_text("sacct_mixed.txt"), SACCT_FIELDS, "AllocTRES")
    assert {gpus_in_tres(text) for text in mixed} == {None, 2}


def test_captured_sinfo_gres(data_text: Callable[[str], str]) -> None:
    text = data_text("sinfo_nodes_gpus_in_use.txt")
    assert {gpus_in_gres(g) for g in _column(text, SINFO_FIELDS, "Gres")} == {4}
    assert {gpus_in_gres(g) for g in _column(text, SINFO_FIELDS, "GresUsed")} == {2}
