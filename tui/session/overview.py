"""The overview tab: the session's spec, hyperparameters, job ids, state history and events,
as Rich tables built from :meth:`nsml_hpc.workspace.Workspace.show` (the data ``show``
prints)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from nsml_hpc.formatting import format_metrics, format_time
from nsml_hpc.sessions.views import shown_resources
from nsml_hpc.slurm.timefmt import format_duration

from ..widgets.styling import state_style


def short_path(path: str) -> str:
    """``/home/me/nsml-runs/x`` -> ``~/nsml-runs/x``."""
    home = str(Path.home())
    if home not in ("", "/") and (path == home or path.startswith(home + "/")):
        return "~" + path[len(home) :]
    return path


def _table(title: str, *columns: str) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=None,
        expand=False,
        header_style="dim underline",
        pad_edge=False,
        padding=(0, 2, 0, 0),
    )
    for column in columns:
        table.add_column(column)
    return table


def title_line(detail: dict[str, Any]) -> Text:
    text = Text()
    text.append(detail["name"], "bold")
    text.append("  ")
    text.append(detail["state_text"], state_style(detail["state"]))
    nodes, total = detail.get("nodes", 1), detail["gpus"]
    single = nodes == 1 or total == 0 or total % nodes  # CPU-only on 2 nodes: 0, not 2x0
    gpus = str(total) if single else f"{nodes}x{total // nodes}"
    parts = [
        detail["cluster"],
        f"{gpus} GPU{'s' if gpus != '1' else ''}",
        format_duration(detail["elapsed_s"]),
    ]
    if detail.get("nodes", 1) > 1:
        parts.insert(2, f"{detail['nodes']} nodes")
    for part in parts:
        text.append("  ·  ", "dim")
        text.append(part)
    if detail.get("memo"):
        text.append(f"  “{detail['memo']}”", "italic")
    return text


def overview(detail: dict[str, Any]) -> RenderableType:
    spec = detail["spec"]
    res = shown_resources(spec["resources"])
    about = _table("Session", "", "")
    about.show_header = False
    rows = [
        ("command", f"{spec['script']} {' '.join(spec['args'])}".strip()),
        ("resources", ", ".join(f"{key}={value}" for key, value in res.items()) or "-"),
        ("user", detail["user"]),
        ("run dir", short_path(detail["run_dir"])),
        ("submitted", format_time(detail["submitted_at"])),
        ("started", format_time(detail["started_at"])),
        ("ended", format_time(detail["ended_at"])),
        (
            "metrics",
            f"{format_metrics(detail['last_metrics'], 60) or '-'}  "
            f"({detail['metric_points']} points, {detail['malformed_metric_lines']} malformed)",
        ),
    ]
    if spec.get("launch", "plain") != "plain" or detail.get("nodes", 1) > 1:
        listed = f": {detail['node_list']}" if detail.get("node_list") else ""
        rows.append(
            ("launch", f"{spec.get('launch', 'plain')} on {detail['nodes']} node(s){listed}")
        )
    if spec.get("after"):
        rows.append(("after", ", ".join(spec["after"])))
    if spec.get("environment"):
        steps = [f"{step['kind']} {step['value']}" for step in spec["environment"]]
        rows.append(("environment", "; ".join(steps)))
    lineage = detail.get("lineage") or {}
    parent = lineage.get("parent")
    if parent:
        step = "?" if parent["step"] is None else parent["step"]
        rows.append(("forked from", f"{parent['session']}:{parent['snapshot']} (step {step})"))
    if lineage.get("children"):
        forks = [f"{child['session']} (from {child['snapshot']})" for child in lineage["children"]]
        rows.append(("forks", ", ".join(forks)))
    if detail.get("memo"):
        rows.append(("memo", detail["memo"]))
    for key, value in rows:
        about.add_row(Text(key, "dim"), Text(str(value)))

    hparams = _table("Hyperparameters", "name", "value")
    for key, value in sorted(detail["hyperparameters"].items()):
        hparams.add_row(key, json.dumps(value) if isinstance(value, str) else str(value))
    if not detail["hyperparameters"]:
        hparams.add_row("-", "-")

    jobs = _table(
        "Slurm jobs (one row per run)",
        "job",
        "run",
        "state",
        "exit",
        "nodes",
        "submitted",
        "started",
        "ended",
    )
    for job in detail["runs"]:
        jobs.add_row(
            job["job_id"],
            str(job["run"]),
            Text(job["state"], state_style(job["state"])),
            "-" if job["exit_code"] is None else str(job["exit_code"]),
            job["node_list"] or "-",
            format_time(job["submitted_at"]),
            format_time(job["started_at"]),
            format_time(job["ended_at"]),
        )

    nodes = _table("Nodes", "node", "host", "state", "tasks", "CUDA_VISIBLE_DEVICES")
    for node in detail.get("node_states", []):
        nodes.add_row(
            "-" if node["node"] is None else str(node["node"]),
            node["host"],
            Text(node["state"], _node_style(node["state"])),
            str(node["tasks"]),
            node["cuda_visible_devices"] or "-",
        )
    node_part: list[RenderableType] = [nodes, Text("")] if detail.get("node_states") else []

    history = _table("State history", "at", "state", "job")
    for change in detail["state_history"]:
        reason = f" ({change['reason']})" if change["reason"] else ""
        history.add_row(
            format_time(change["at"]),
            Text(change["state"] + reason, state_style(change["state"])),
            change["job_id"] or "-",
        )

    events = _table("Events", "at", "event", "job", "details")
    for event in detail["events"]:
        extra = {k: v for k, v in event.items() if k not in ("at", "event", "job_id")}
        details = " ".join(f"{k}={v}" for k, v in sorted(extra.items()) if v is not None)
        events.add_row(format_time(event["at"]), event["event"], event["job_id"] or "-", details)
    if not detail["events"]:
        events.add_row("-", "no events yet", "", "")
    return Group(
        about, Text(""), hparams, Text(""), jobs, Text(""), *node_part, history, Text(""), events
    )


def _node_style(state: str) -> str:
    if state == "running":
        return state_style("RUNNING")
    if state == "ok":
        return state_style("COMPLETED")
    return state_style("FAILED")
