"""What ``show`` adds for snapshots, requeues and forks, as JSON-ready data: the job runs
(one per Slurm start), the lineage (parent and children), the snapshot totals and how many
metric points a resumed run superseded."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def snapshot_metrics(row: Any) -> dict[str, float | None]:
    """The metrics a snapshot row recorded (``metrics_json``)."""
    data = json.loads(row.metrics_json or "{}")
    return data if isinstance(data, dict) else {}


def snapshot_summary(
    *,
    runs: Sequence[Any],
    snaps: Sequence[Any],
    parent: Any,
    children: Sequence[tuple[str, str]],
    superseded: int,
) -> dict[str, Any]:
    """``show``'s part from a session's job runs, snapshot rows (oldest first), lineage row,
    children and superseded points (catalog rows, or rows with the same attribute names)."""
    latest = max(
        (row for row in snaps if row.problem is None),
        key=lambda row: (row.created_at, row.step if row.step is not None else -1, row.tag),
        default=None,
    )
    return {
        "job_runs": [
            {
                "job_id": run.job_id,
                "restart_count": run.restart_count,
                "started_at": run.started_at,
                "ended_at": run.ended_at,
                "host": run.host,
                "exit_code": run.exit_code,
                "outcome": run.outcome,
                "resume_tag": run.resume_tag,
                "resume_step": run.resume_step,
                "first_step": run.first_step,
            }
            for run in runs
        ],
        "superseded_points": superseded,
        "snapshots": {
            "count": len(snaps),
            "bytes": sum(row.bytes for row in snaps),
            "pinned": sum(1 for row in snaps if row.pinned),
            "damaged": sum(1 for row in snaps if row.problem),
            "latest": None
            if latest is None
            else {"tag": latest.tag, "step": latest.step, "metrics": snapshot_metrics(latest)},
        },
        "lineage": {
            "parent": None
            if parent is None
            else {
                "session": parent.parent_name,
                "snapshot": parent.parent_tag,
                "step": parent.parent_step,
                "overrides": json.loads(parent.overrides_json or "{}"),
                "path": parent.parent_snapshot_path,
            },
            "children": [{"session": child, "snapshot": tag} for child, tag in children],
        },
    }
