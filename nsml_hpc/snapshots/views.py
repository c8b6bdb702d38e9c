"""What ``show`` adds for snapshots, requeues and forks, as JSON-ready data: the job runs
(one per Slurm start), the lineage (parent and children), the snapshot totals and how many
metric points a resumed run superseded."""

from __future__ import annotations

import json
from typing import Any

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import superseded_count
from nsml_hpc.catalog.snapshots import (
    children_of,
    job_runs_of,
    lineage_of,
    snapshot_metrics,
    snapshots_of,
)


def snapshot_detail(catalog: Catalog, session_id: int) -> dict[str, Any]:
    runs = job_runs_of(catalog, [session_id])[session_id]
    snaps = snapshots_of(catalog, [session_id])[session_id]
    parent = lineage_of(catalog, session_id)
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
        "superseded_points": superseded_count(catalog, session_id),
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
            "children": [
                {"session": child, "snapshot": tag}
                for child, tag in children_of(catalog, session_id)
            ],
        },
    }
