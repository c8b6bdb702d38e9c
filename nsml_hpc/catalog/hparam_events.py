"""Hyperparameter changes a running job took (``hparam`` events it wrote to events.jsonl, see
:mod:`nsml_hpc.job.live_hparams`) and the changes asked for (``hparam_requested``, written
here by ``nsml-hpc set``): the value history that ``show``, ``plot``, ``compare``, ``diff``
and ``fork`` read."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nsml_hpc.job.hparams import HParamValue

if TYPE_CHECKING:
    from nsml_hpc.catalog.engine import Catalog
    from nsml_hpc.catalog.models import EventRecord

TAKEN = "hparam"  # written by the job when it takes a change (with the step)
REQUESTED = "hparam_requested"  # written by `nsml-hpc set` into the catalog


@dataclass(frozen=True)
class HParamChange:
    """One change the job took: the new values, from the step ``step`` on."""

    at: float | None
    step: int | None
    version: int
    changes: dict[str, HParamValue] = field(default_factory=dict)
    previous: dict[str, HParamValue | None] = field(default_factory=dict)


def _scalars(data: Any) -> dict[str, HParamValue]:
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, bool | int | float | str)}


def _change(event: Any) -> HParamChange | None:
    """The change one ``hparam`` event (a catalog row, or any object with its ``at`` and
    ``data_json``) says the job took; None for an unreadable one."""
    try:
        data = json.loads(event.data_json or "{}")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    step, version = data.get("step"), data.get("version")
    previous = data.get("previous") if isinstance(data.get("previous"), dict) else {}
    return HParamChange(
        at=event.at,
        step=step if isinstance(step, int) and not isinstance(step, bool) else None,
        version=version if isinstance(version, int) and not isinstance(version, bool) else 0,
        changes=_scalars(data.get("changes")),
        previous={str(k): v for k, v in (previous or {}).items()},
    )


def taken_events(catalog: Catalog, session_ids: Sequence[int]) -> list[EventRecord]:
    """The ``hparam`` events of ``session_ids``, in the order the jobs wrote them (one query)."""
    from sqlmodel import col, select

    from nsml_hpc.catalog.models import EventRecord

    if not session_ids:
        return []
    with catalog.session() as db:
        return list(
            db.exec(
                select(EventRecord)
                .where(
                    col(EventRecord.session_id).in_(list(session_ids)), EventRecord.kind == TAKEN
                )
                .order_by(col(EventRecord.id))
            ).all()
        )


def taken_from(events: Sequence[Any]) -> list[HParamChange]:
    """The changes ``events`` (one session's ``hparam`` events, oldest first) say the job
    took; unreadable and empty ones are left out."""
    return [change for event in events if (change := _change(event)) is not None and change.changes]


def taken_changes(catalog: Catalog, session_ids: Sequence[int]) -> dict[int, list[HParamChange]]:
    """The changes each session's job took, in the order it took them (one query)."""
    found: dict[int, list[Any]] = {session_id: [] for session_id in session_ids}
    for row in taken_events(catalog, session_ids):
        found[row.session_id].append(row)
    return {session_id: taken_from(events) for session_id, events in found.items()}


def record_request(
    catalog: Catalog, session_id: int, version: int, changes: Mapping[str, HParamValue], at: float
) -> None:
    """Note a ``set`` in the session's events (the job's own event follows when it takes it)."""
    from nsml_hpc.catalog.models import EventRecord

    with catalog.session() as db:
        db.add(
            EventRecord(
                session_id=session_id,
                at=at,
                kind=REQUESTED,
                data_json=json.dumps(
                    {"version": version, "changes": dict(changes)}, sort_keys=True
                ),
            )
        )


def current_values(
    submitted: Mapping[str, HParamValue], changes: Sequence[HParamChange]
) -> dict[str, HParamValue]:
    """The values in effect after ``changes``: what a fork starts from."""
    values = dict(submitted)
    for change in changes:
        values.update(change.changes)
    return values


def history_text(first: HParamValue | None, steps: Sequence[tuple[int | None, HParamValue]]) -> str:
    """``0.1 → 0.01@40 → 0.001@90``: the submitted value, then each taken one at its step."""
    parts = ["-" if first is None else str(first)]
    for step, value in steps:
        parts.append(f"{value}@{'?' if step is None else step}")
    return " → ".join(parts)


def with_history(
    submitted: Mapping[str, HParamValue], changes: Sequence[HParamChange]
) -> dict[str, HParamValue]:
    """The submitted values, with each changed one replaced by its history text (so that
    ``compare`` and ``diff`` show how it moved)."""
    values: dict[str, HParamValue] = dict(submitted)
    moves: dict[str, list[tuple[int | None, HParamValue]]] = {}
    for change in changes:
        for name, value in change.changes.items():
            moves.setdefault(name, []).append((change.step, value))
    for name, steps in moves.items():
        values[name] = history_text(submitted.get(name), steps)
    return values


__all__ = [
    "REQUESTED",
    "TAKEN",
    "HParamChange",
    "current_values",
    "history_text",
    "record_request",
    "taken_changes",
    "with_history",
]
