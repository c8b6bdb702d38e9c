"""``show``'s ``resources`` and ``requests`` lines for issue 10's settings (GPU type, whole
nodes, passed-through sbatch options, tasks, reservation, mail), before Slurm said what it
gave the job (``(as asked)``) and after a sync read the allocation back."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from nsml_hpc.cli.session_commands import render_detail
from nsml_hpc.workspace import Workspace
from tests.tui.conftest import build_catalog

ASKED = {
    "gpus": 2,
    "gpu_type": "h100",
    "nodes": 2,
    "ntasks_per_node": 2,
    "cpus_per_task": 4,
    "exclusive": True,
    "reservation": "maint",
    "mail_type": "END,FAIL",
    "mail_user": "alice@example.org",
    "dependency": "afterok:12",
    "sbatch_args": ["--comment=x", "--nice=5"],
}
ALLOCATION = {
    "partition": "gpu",
    "account": "lab",
    "qos": "normal",
    "gpus": 4,
    "time_limit": "01:00:00",
    "nodes": 2,
}


@pytest.fixture
def detail(workspace: Workspace) -> dict[str, Any]:
    """A real ``show --json`` document (the TUI tests' mnist/1), its resources replaced."""
    build_catalog(workspace.catalog, workspace.settings.run_root)
    found = copy.deepcopy(workspace.show("mnist/1"))
    found["spec"]["resources"] = {**found["spec"]["resources"], **ASKED}
    found["spec"]["launch"] = "srun"
    found["nodes"], found["node_list"] = 2, "duo[1-2]"
    return found


def _line(text: str, head: str) -> str | None:
    return next((line for line in text.splitlines() if line.startswith(head)), None)


def test_before_the_allocation_every_setting_shows_as_asked(detail: dict[str, Any]) -> None:
    detail["allocation"] = None
    text = render_detail(detail)
    resources = _line(text, "resources   ")
    assert resources is not None and resources.endswith("(as asked)")
    for shown in (
        "gpus=h100:2",
        "nodes=2",
        "ntasks_per_node=2",
        "cpus_per_task=4",
        "exclusive=True",
        "reservation=maint",
        "mail_type=END,FAIL",
        "mail_user=alice@example.org",
        "dependency=afterok:12",
        "sbatch_args=--comment=x --nice=5",
    ):
        assert shown in resources, (shown, resources)
    assert "gpu_type" not in resources  # folded into gpus=TYPE:N
    assert _line(text, "requests    ") is None  # the resources line says it all


def test_after_the_allocation_the_requests_line_keeps_what_slurm_does_not_say(
    detail: dict[str, Any],
) -> None:
    detail["allocation"] = ALLOCATION
    text = render_detail(detail)
    assert _line(text, "resources   ") == (
        "resources   partition=gpu, account=lab, qos=normal, gpus=4, time_limit=01:00:00, nodes=2"
    )
    assert _line(text, "requests    ") == (
        "requests    gpus=h100:2, ntasks_per_node=2, cpus_per_task=4, exclusive=True, "
        "reservation=maint, dependency=afterok:12, mail_type=END,FAIL, "
        "mail_user=alice@example.org, sbatch_args=--comment=x --nice=5"
    )
    assert _line(text, "launch      ") == "launch      srun on 2 node(s): duo[1-2]"


def test_a_plain_request_adds_no_requests_line(detail: dict[str, Any]) -> None:
    detail["spec"]["resources"] = {"gpus": 2, "nodes": 1, "exclusive": None, "sbatch_args": []}
    detail["allocation"] = ALLOCATION
    text = render_detail(detail)
    assert _line(text, "requests    ") is None
    detail["allocation"] = None
    assert _line(render_detail(detail), "resources   ") == "resources   gpus=2, nodes=1  (as asked)"
