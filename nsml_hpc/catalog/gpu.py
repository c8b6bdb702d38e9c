"""GPU usage per session (from gpu.jsonl), stored with its cursor in one transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import CursorState, move_cursor
from nsml_hpc.catalog.models import GpuUsage
from nsml_hpc.job.layout import GPU_FILE
from nsml_hpc.runfiles.idle import IdleState


def gpu_states(catalog: Catalog, session_ids: Sequence[int]) -> dict[int, IdleState]:
    if not session_ids:
        return {}
    with catalog.session() as db:
        rows = db.exec(select(GpuUsage).where(col(GpuUsage.session_id).in_(list(session_ids))))
        return {
            row.session_id: IdleState(
                row.idle_since, row.last_sample_at, row.last_util, row.samples, row.warnings
            )
            for row in rows
        }


def store_gpu_state(
    catalog: Catalog,
    session_id: int,
    state: IdleState,
    cursor: CursorState,
    new_offset: int,
    lines: int,
    now: float,
) -> None:
    with catalog.session() as db:
        row = db.get(GpuUsage, session_id) or GpuUsage(session_id=session_id)
        row.idle_since, row.last_sample_at = state.idle_since, state.last_sample_at
        row.last_util, row.samples, row.warnings = state.last_util, state.samples, state.warnings
        db.add(row)
        move_cursor(db, session_id, GPU_FILE, CursorState(new_offset, cursor.lines + lines), now)
