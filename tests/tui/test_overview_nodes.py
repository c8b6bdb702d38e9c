"""The session overview of a multi-node session: the launch line, GPUs as NODESxGPUS in the
title, and a Nodes table with each node's state (what ``show`` prints, rendered by Rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from tui.session.overview import overview, title_line


def _detail() -> dict[str, Any]:
    return {
        "name": "mnist/3",
        "state": "RUNNING",
        "state_text": "RUNNING",
        "cluster": "duo",
        "gpus": 4,  # all nodes'
        "nodes": 2,
        "node_list": "duo[1-2]",
        "elapsed_s": 61.0,
        "memo": "",
        "user": "alice",
        "run_dir": "/runs/alice/mnist/3",
        "submitted_at": None,
        "started_at": None,
        "ended_at": None,
        "last_metrics": {},
        "metric_points": 0,
        "malformed_metric_lines": 0,
        "hyperparameters": {},
        "jobs": [],
        "runs": [],
        "state_history": [],
        "events": [],
        "spec": {
            "script": "train.py",
            "args": [],
            "launch": "torchrun",
            "after": ["mnist/2"],
            "resources": {"gpus": 2, "nodes": 2, "gpu_type": "a100", "exclusive": True},
        },
        "node_states": [
            {
                "node": 0,
                "host": "duo1",
                "state": "running",
                "tasks": 1,
                "cuda_visible_devices": "0,1",
            },
            {
                "node": 1,
                "host": "duo2",
                "state": "exit 3",
                "tasks": 1,
                "cuda_visible_devices": "0,1",
            },
        ],
    }


def _text(renderable: Any) -> str:
    console = Console(width=120, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_overview_shows_the_launch_and_every_node() -> None:
    text = _text(overview(_detail()))
    assert "torchrun on 2 node(s): duo[1-2]" in text
    assert "gpus=a100:2" in text and "exclusive=True" in text
    assert "after" in text and "mnist/2" in text
    rows = [line.split() for line in text.splitlines() if line.strip().startswith(("0 ", "1 "))]
    assert ["0", "duo1", "running", "1", "0,1"] in rows
    assert ["1", "duo2", "exit", "3", "1", "0,1"] in rows
    assert "2x2 GPUs" in _text(title_line(_detail()))


def test_a_cpu_only_multi_node_session_has_0_gpus_in_the_title() -> None:
    detail = {**_detail(), "gpus": 0}
    title = _text(title_line(detail))
    assert "0 GPUs" in title and "2x0" not in title
    assert "16x8 GPUs" in _text(title_line({**_detail(), "gpus": 128, "nodes": 16}))


def test_the_gpus_column_holds_16x8_and_its_sorted_header() -> None:
    from tui.sessions.table import _cell, layout_columns

    gpus = next(column for column in layout_columns(120, None) if column.key == "gpus")
    for text in ("16x8", "128x8", "GPUS ▼"):
        assert _cell(text, gpus.width, gpus.align).strip() == text
