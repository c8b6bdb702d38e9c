"""What a user does with a session's snapshots: list, remove, pin, pull a copy, see disk use.
The CLI (``nsml-hpc model ...``) and the TUI call these. Checkpoint files the training code
wrote itself (:mod:`nsml_hpc.snapshots.found`) are listed beside saved snapshots, marked as
found, and pulled, pinned and removed the same way.

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
from nsml_hpc.catalog.snapshot_models import FoundCheckpointRecord, SnapshotRecord
from nsml_hpc.catalog.snapshots import (
    children_of,
    found_records,
    get_snapshot,
    set_pinned,
    snapshots_of,
)
from nsml_hpc.context import Context
from nsml_hpc.errors import NsmlError, SpecError
from nsml_hpc.job.snapshot_format import MANIFEST_FILE, parse_manifest
from nsml_hpc.job.snapshot_store import MAX_MANIFEST_BYTES, check_files
from nsml_hpc.slurm.states import is_live
from nsml_hpc.snapshots.delete import delete_snapshot
from nsml_hpc.snapshots.found import is_writing
from nsml_hpc.snapshots.sync import refresh_session
from nsml_hpc.snapshots.views import snapshot_metrics

PULL_CHUNK = 8 * 1024 * 1024


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
    found: str | None = None  # a checkpoint the training code wrote: lightning, torch, ...

    @property
    def writing(self) -> bool:
        return is_writing(self.problem)

    @property
    def flags(self) -> str:
        names = [
            name
            for name, on in (
                (f"found:{self.found}", self.found is not None),
                ("latest", self.latest),
                ("pinned", self.pinned),
                ("forked", self.forked_from),
                ("writing", self.writing),
                ("DAMAGED", self.problem is not None and not self.writing),
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


def refresh(
    workspace: Context, record: SessionRecord, *, checkpoints: bool = True
) -> dict[str, str]:
    """Re-read the snapshot folder (and, with ``checkpoints``, walk for checkpoint files) of
    a session the caller may change (damaged tags -> why); another user's session keeps the
    catalog's rows, which only its owner writes."""
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
        checkpoints=checkpoints,
    )


def _rows(
    record: SessionRecord,
    rows: list[SnapshotRecord],
    links: dict[int, FoundCheckpointRecord] | None = None,
) -> list[SnapshotRow]:
    """Rows for ``model ls``: the newest intact one of each kind (saved snapshots, found
    checkpoints) is ``latest``."""
    links = links or {}

    def key(row: SnapshotRecord) -> tuple[float, int, str]:
        return (row.created_at, row.step if row.step is not None else -1, row.tag)

    latest: set[str] = set()
    for found in (False, True):
        intact = [r for r in rows if r.problem is None and (r.id in links) == found]
        if intact:
            latest.add(max(intact, key=key).tag)

    def path(row: SnapshotRecord) -> str:
        link = links.get(row.id or -1)
        if link is not None:
            return f"{record.run_dir}/{link.path}"
        return f"{record.run_dir}/snapshots/{row.tag}"

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
            latest=row.tag in latest,
            problem=row.problem,
            path=path(row),
            found=links[row.id].kind if row.id in links else None,
        )
        for row in sorted(rows, key=key)
    ]


def list_models(workspace: Context, name: str) -> Listing:
    record = get_session(workspace.catalog, name)
    assert record.id is not None
    refresh(workspace, record)
    rows = snapshots_of(workspace.catalog, [record.id])[record.id]
    live = is_live(record.state, record.ended_at, time.time())
    links = found_records(workspace.catalog, [record.id])
    return Listing(name, live, _rows(record, rows, links))


def is_selector(text: str) -> bool:
    """``latest`` or ``best:METRIC[:min|max]``: a choice among snapshots, not a tag."""
    return text == "latest" or text.startswith("best:")


def resolve_tag(workspace: Context, name: str, tag: str) -> str:
    """The tag ``tag`` names: itself, or the snapshot a ``latest`` / ``best:M`` selector
    chooses (the same choice ``fork --snapshot`` and ``load()`` make; damaged ones never)."""
    if not is_selector(tag):
        return tag
    from nsml_hpc.snapshots.fork import choose_snapshot

    return choose_snapshot(workspace, name, tag).tag


def _latest_of(rows: list[SnapshotRow]) -> str | None:
    return next((row.tag for row in rows if row.latest), None)


def remove_model(workspace: Context, name: str, tag: str) -> SnapshotRow:
    """Delete one snapshot (crash-safe order), refusing protected ones with the reason."""
    from nsml_hpc.snapshots.gc import gc_lock, gc_lock_path

    record = get_session(workspace.catalog, name)
    assert record.id is not None
    check_owner(workspace.catalog, record, "delete snapshots of")
    with gc_lock(gc_lock_path(workspace.settings.catalog_url)):
        tag = resolve_tag(workspace, name, tag)
        listing = list_models(workspace, name)
        row = next((item for item in listing.snapshots if item.tag == tag), None)
        if row is None:
            get_snapshot(workspace.catalog, record.id, name, tag)  # raises NotFoundError
            raise SpecError(f"session {name} has no snapshot {tag!r}")
        if row.pinned:
            raise SpecError(f"{name}:{tag} is pinned; unpin it first (nsml-hpc model unpin)")
        if row.writing:
            raise SpecError(f"{name}:{tag} is {row.problem}; try again once it is written")
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
    tag = resolve_tag(workspace, name, tag)
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


def _pull_file(
    files: RunFiles, source: str, size: int, mtime_ns: int, target: Path, label: str
) -> None:
    """Copy one checkpoint file in pieces through the files seam into ``target`` (a temp
    name here), refusing a file that changed meanwhile (still being written)."""
    with target.open("xb") as out:
        offset = 0
        while offset < size:
            chunk = files.read_from(source, offset, min(PULL_CHUNK, size - offset))
            if not chunk:
                break
            out.write(chunk)
            offset += len(chunk)
    after = files.stat(source)
    if offset != size or after is None or (after.size, after.mtime_ns) != (size, mtime_ns):
        raise NsmlError(
            f"{label} changed while it was copied (it is being written); pull it again later"
        )


def pull_model(workspace: Context, name: str, tag: str, destination: Path) -> Path:
    """Copy a snapshot folder (or a found checkpoint file) to ``destination`` on this machine
    (through the backend's files seam, so over SSH too); verified against its manifest (or
    its size, unchanged during the copy), then renamed into place."""
    record = get_session(workspace.catalog, name)
    assert record.id is not None
    tag = resolve_tag(workspace, name, tag)
    damaged = refresh(workspace, record)
    row = get_snapshot(workspace.catalog, record.id, name, tag)
    problem = damaged.get(tag) or row.problem
    if problem and is_writing(problem):
        raise NsmlError(f"{name}:{tag} is {problem}; pull it once it is written")
    if tag in damaged or row.problem:
        raise NsmlError(f"snapshot {name}:{tag} is damaged ({problem})")
    link = found_records(workspace.catalog, [record.id]).get(row.id or -1)
    if link is not None:
        return _pull_found(workspace, record, row, link, destination)
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


def _pull_found(
    workspace: Context,
    record: SessionRecord,
    row: SnapshotRecord,
    link: FoundCheckpointRecord,
    destination: Path,
) -> Path:
    label = f"{record.name}:{row.tag}"
    name = link.path.rsplit("/", 1)[-1]
    target = _pull_target(destination.expanduser().absolute(), name)
    temp = target.parent / f".{target.name}.nsml-pull-{os.getpid()}"
    temp.unlink(missing_ok=True)
    source = f"{record.run_dir}/{link.path}"
    try:
        _pull_file(_files(workspace, record), source, row.bytes, link.mtime_ns, temp, label)
        temp.rename(target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise NsmlError(f"cannot pull {label}: {exc}") from exc
    except BaseException:
        temp.unlink(missing_ok=True)
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
    ids = [s.id for s in sessions if s.id is not None]
    with_found = {link.session_id for link in found_records(workspace.catalog, ids).values()}
    for record in sessions:
        walk = is_live(record.state, record.ended_at, now) or record.id in with_found
        try:
            refresh(workspace, record, checkpoints=walk)
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
    "resolve_tag",
]
