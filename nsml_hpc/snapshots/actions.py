"""What a user does with a session's snapshots: list, remove, pin, pull a copy, see disk use.
The CLI (``nsml-hpc model ...``) and the TUI call these.

Every command first re-reads the session's snapshot folder through the backend's files seam
(so a folder deleted or edited by hand is seen), and reaches the files only through that
seam, so it works wherever the run directory lives. Only the owner's (or an admin's) commands
re-read it: another user's session is listed as the catalog has it (its owner's syncs keep it
current), and pin and delete are the owner's (nsml_hpc.catalog.ownership).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsml_hpc.backends.files import RunFiles
from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.catalog.ownership import check_owner, may_change
from nsml_hpc.catalog.sessions import get_session, list_sessions
from nsml_hpc.catalog.snapshot_models import SnapshotRecord
from nsml_hpc.catalog.snapshots import (
    children_of,
    get_snapshot,
    set_pinned,
    snapshot_metrics,
    snapshots_of,
)
from nsml_hpc.context import Context
from nsml_hpc.errors import NsmlError, SpecError
from nsml_hpc.job.snapshot_format import MANIFEST_FILE, parse_manifest
from nsml_hpc.job.snapshot_store import MAX_MANIFEST_BYTES, check_files
from nsml_hpc.slurm.states import is_live
from nsml_hpc.snapshots.delete import delete_snapshot
from nsml_hpc.snapshots.sync import refresh_session


@dataclass(frozen=True)
class SnapshotRow:
    tag: str
    step: int | None
    metrics: dict[str, float | None]
    bytes: int
    files: int
    created_at: float
    pinned: bool
    forked_from: bool
    latest: bool
    problem: str | None
    path: str

    @property
    def flags(self) -> str:
        names = [
            name
            for name, on in (
                ("latest", self.latest),
                ("pinned", self.pinned),
                ("forked", self.forked_from),
                ("DAMAGED", self.problem is not None),
            )
            if on
        ]
        return ",".join(names)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "flags": self.flags}


@dataclass(frozen=True)
class Listing:
    session: str
    live: bool
    snapshots: list[SnapshotRow]


def _files(workspace: Context, record: SessionRecord) -> RunFiles:
    return workspace.backend_for(record.cluster).files


def refresh(workspace: Context, record: SessionRecord) -> dict[str, str]:
    """Re-read the snapshot folder of a session the caller may change (damaged tags ->
    why); another user's session keeps the catalog's rows, which only its owner writes."""
    assert record.id is not None
    if not may_change(workspace.catalog, record):
        return {}
    return refresh_session(
        workspace.catalog,
        _files(workspace, record),
        record.id,
        record.name,
        record.run_dir,
        time.time(),
    )


def _rows(record: SessionRecord, rows: list[SnapshotRecord]) -> list[SnapshotRow]:
    def key(row: SnapshotRecord) -> tuple[float, int, str]:
        return (row.created_at, row.step if row.step is not None else -1, row.tag)

    intact = [row for row in rows if row.problem is None]
    latest = max(intact, key=key).tag if intact else None
    return [
        SnapshotRow(
            tag=row.tag,
            step=row.step,
            metrics=snapshot_metrics(row),
            bytes=row.bytes,
            files=row.file_count,
            created_at=row.created_at,
            pinned=row.pinned,
            forked_from=row.forked_from,
            latest=row.tag == latest,
            problem=row.problem,
            path=f"{record.run_dir}/snapshots/{row.tag}",
        )
        for row in sorted(rows, key=key)
    ]


def list_models(workspace: Context, name: str) -> Listing:
    record = get_session(workspace.catalog, name)
    assert record.id is not None
    refresh(workspace, record)
    rows = snapshots_of(workspace.catalog, [record.id])[record.id]
    live = is_live(record.state, record.ended_at, time.time())
    return Listing(name, live, _rows(record, rows))


def _latest_of(rows: list[SnapshotRow]) -> str | None:
    return next((row.tag for row in rows if row.latest), None)


def remove_model(workspace: Context, name: str, tag: str) -> SnapshotRow:
    """Delete one snapshot (crash-safe order), refusing protected ones with the reason."""
    from nsml_hpc.snapshots.gc import gc_lock

    record = get_session(workspace.catalog, name)
    assert record.id is not None
    check_owner(workspace.catalog, record, "delete snapshots of")
    with gc_lock():
        listing = list_models(workspace, name)
        row = next((item for item in listing.snapshots if item.tag == tag), None)
        if row is None:
            get_snapshot(workspace.catalog, record.id, name, tag)  # raises NotFoundError
            raise SpecError(f"session {name} has no snapshot {tag!r}")
        if row.pinned:
            raise SpecError(f"{name}:{tag} is pinned; unpin it first (nsml-hpc model unpin)")
        if row.forked_from:
            children = [
                child
                for child, parent_tag in children_of(workspace.catalog, record.id)
                if parent_tag == tag
            ]
            shown = ", ".join(children) or "a session since removed"
            raise SpecError(f"{name}:{tag} is the start of forked session(s) {shown}; kept")
        if listing.live and row.latest:
            raise SpecError(
                f"{name}:{tag} is the latest snapshot of a session that is {record.state}; "
                "a requeued job resumes from it"
            )
        stored = get_snapshot(workspace.catalog, record.id, name, tag)
        outcome = delete_snapshot(workspace.catalog, _files(workspace, record), record, stored)
        if not outcome.done:
            raise NsmlError(f"{name}:{tag} was not deleted: {outcome.message}")
    return row


def pin_model(workspace: Context, name: str, tag: str, pinned: bool) -> SnapshotRecord:
    record = get_session(workspace.catalog, name)
    assert record.id is not None
    check_owner(workspace.catalog, record, "pin or unpin snapshots of")
    refresh(workspace, record)
    row = get_snapshot(workspace.catalog, record.id, name, tag)
    assert row.id is not None
    if not set_pinned(workspace.catalog, row.id, pinned):
        raise NsmlError(f"{name}:{tag} is being deleted; it cannot be pinned")
    row.pinned = pinned
    return row


def _pull_target(destination: Path, tag: str) -> Path:
    target = destination / tag if destination.is_dir() else destination
    if target.exists() or target.is_symlink():
        raise SpecError(f"{target} exists; choose another destination")
    if not target.parent.is_dir():
        raise SpecError(f"{target.parent} is not a folder")
    return target


def pull_model(workspace: Context, name: str, tag: str, destination: Path) -> Path:
    """Copy a snapshot folder to ``destination`` on this machine (through the backend's files
    seam, so over SSH too); verified against its manifest, then renamed into place."""
    record = get_session(workspace.catalog, name)
    assert record.id is not None
    damaged = refresh(workspace, record)
    row = get_snapshot(workspace.catalog, record.id, name, tag)
    if tag in damaged or row.problem:
        raise NsmlError(f"snapshot {name}:{tag} is damaged ({damaged.get(tag) or row.problem})")
    target = _pull_target(destination.expanduser().absolute(), tag)
    temp = target.parent / f".{target.name}.nsml-pull-{os.getpid()}"
    if temp.exists():
        shutil.rmtree(temp)
    try:
        _files(workspace, record).copy_out(f"{record.run_dir}/snapshots/{tag}", temp)
        raw = (temp / MANIFEST_FILE).read_bytes()[: MAX_MANIFEST_BYTES + 1]
        manifest = parse_manifest(json.loads(raw), tag)
        problem = check_files(manifest, temp)
        if problem is not None:
            raise NsmlError(f"the copy of {name}:{tag} is incomplete ({problem})")
        temp.rename(target)
    except (OSError, ValueError) as exc:
        shutil.rmtree(temp, ignore_errors=True)
        raise NsmlError(f"cannot pull {name}:{tag}: {exc}") from exc
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return target


@dataclass(frozen=True)
class Usage:
    session: str
    project: str
    state: str
    snapshots: int
    bytes: int
    pinned_bytes: int
    protected_bytes: int


def disk_usage(workspace: Context, project: str | None = None) -> list[Usage]:
    """Snapshot disk use per session (re-read from disk), newest sessions first."""
    now = time.time()
    sessions = list_sessions(workspace.catalog, project=project)
    for record in sessions:
        try:
            refresh(workspace, record)
        except NsmlError:
            continue  # unreachable cluster: the catalog's last view
    rows = snapshots_of(workspace.catalog, [s.id for s in sessions if s.id is not None])
    usage: list[Usage] = []
    for record in sessions:
        snaps = rows.get(record.id or -1, [])
        live = is_live(record.state, record.ended_at, now)
        intact = [row for row in snaps if row.problem is None]
        latest = (
            max(intact, key=lambda r: (r.created_at, r.step if r.step is not None else -1, r.tag))
            if intact and live
            else None
        )
        protected = [
            row for row in snaps if row.pinned or row.forked_from or row is latest or row.problem
        ]
        usage.append(
            Usage(
                session=record.name,
                project=record.project,
                state=record.state,
                snapshots=len(snaps),
                bytes=sum(row.bytes for row in snaps),
                pinned_bytes=sum(row.bytes for row in snaps if row.pinned),
                protected_bytes=sum(row.bytes for row in protected),
            )
        )
    return usage


__all__ = [
    "Listing",
    "SnapshotRow",
    "Usage",
    "disk_usage",
    "list_models",
    "pin_model",
    "pull_model",
    "remove_model",
]
