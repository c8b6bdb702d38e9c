"""``nsml-hpc gc``: apply the retention policies to the current user's sessions.

One gc at a time per machine (an ``fcntl`` lock next to the catalog); across machines sharing
a PostgreSQL catalog each deletion is still claimed by one conditional UPDATE, so two gc runs
never both delete, and a fork never loses its start snapshot to a gc running at that moment.
Before planning, gc finishes deletions a crash interrupted and re-reads every snapshot folder
of the sessions in scope (a hand-edited folder shows up as damaged and is left alone).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from nsml_hpc.backends.files import RunFiles
from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.catalog.sessions import list_sessions
from nsml_hpc.catalog.snapshot_models import SnapshotRecord
from nsml_hpc.catalog.snapshots import found_records, snapshots_of
from nsml_hpc.config import locations
from nsml_hpc.context import Context
from nsml_hpc.errors import GcBusy, NsmlError
from nsml_hpc.slurm.states import is_live
from nsml_hpc.snapshots.delete import Recovery, delete_snapshot, finish_interrupted
from nsml_hpc.snapshots.found import is_writing
from nsml_hpc.snapshots.retention import (
    Plan,
    Policies,
    SessionFacts,
    SnapshotFacts,
    load_policies,
    plan,
)
from nsml_hpc.snapshots.sync import refresh_session
from nsml_hpc.snapshots.views import snapshot_metrics

LOCK_FILE = "gc.lock"
LOG_FILE = "gc.log"


def gc_lock_path(catalog_url: str) -> Path:
    """Where the gc lock lives: next to the catalog file (a SQLite catalog), so every
    process that uses one catalog shares one lock whatever its data folder; the data folder's
    for a catalog on a server."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(catalog_url)
    except ArgumentError:
        return locations.data_dir() / LOCK_FILE
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).expanduser().absolute().parent / LOCK_FILE
    return locations.data_dir() / LOCK_FILE


def lock_path() -> Path:
    """The lock of the configured catalog (:func:`gc_lock_path`)."""
    from nsml_hpc.config.settings import load_settings

    return gc_lock_path(load_settings().catalog_url)


def default_log_file() -> Path:
    """``gc --cron``'s log when ``[gc] log_file`` names none: ``gc.log`` in the data folder
    (``$XDG_DATA_HOME/nsml-hpc``, by default ``~/.local/share/nsml-hpc``)."""
    return locations.data_dir() / LOG_FILE


@contextmanager
def gc_lock(path: Path | None = None) -> Iterator[None]:
    """Hold the gc lock (:func:`gc_lock_path`); :class:`GcBusy` at once if another process
    holds it. The kernel drops the lock when its holder dies, however it dies (``kill -9``
    included)."""
    path = path or lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 64, 0).decode("ascii", "replace").strip() or "?"
            raise GcBusy(f"another nsml-hpc gc is running (pid {holder}); nothing done") from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(handle)


@dataclass
class GcResult:
    plan: Plan
    applied: bool
    deleted: list[str] = field(default_factory=list)  # "session:tag"
    freed_bytes: int = 0
    skipped: list[str] = field(default_factory=list)  # "session:tag: why"
    damaged: dict[str, str] = field(default_factory=dict)  # "session:tag" -> why
    recovery: Recovery = field(default_factory=Recovery)
    errors: list[str] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)

    def label(self, session_id: int, tag: str) -> str:
        return f"{self.names.get(session_id, session_id)}:{tag}"


def _facts(
    sessions: list[SessionRecord],
    rows: dict[int, list[SnapshotRecord]],
    damaged: dict[int, set[str]],
    now: float,
    found: set[int] | None = None,
) -> tuple[list[SnapshotFacts], list[SessionFacts]]:
    snapshot_facts: list[SnapshotFacts] = []
    session_facts: list[SessionFacts] = []
    for record in sessions:
        assert record.id is not None
        session_facts.append(
            SessionFacts(
                id=record.id,
                name=record.name,
                project=record.project,
                live=is_live(record.state, record.ended_at, now),
                ended_at=record.ended_at,
            )
        )
        for row in rows.get(record.id, []):
            assert row.id is not None
            snapshot_facts.append(
                SnapshotFacts(
                    id=row.id,
                    session_id=record.id,
                    tag=row.tag,
                    step=row.step,
                    created=row.created_at,
                    bytes=row.bytes,
                    metrics=snapshot_metrics(row),
                    pinned=row.pinned,
                    forked_from=row.forked_from,
                    damaged=bool(row.problem) or row.tag in damaged.get(record.id, set()),
                    found=row.id in (found or set()),
                    writing=is_writing(row.problem),
                )
            )
    return snapshot_facts, session_facts


def run_gc(
    workspace: Context,
    *,
    apply: bool,
    project: str | None = None,
    user: str | None = None,
    policies: Policies | None = None,
    now: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> GcResult:
    """Plan (and with ``apply``, carry out) the deletions the policies ask for, among the
    sessions of ``user`` (default: the caller; another user's only for a catalog admin).
    The caller holds :func:`gc_lock`."""
    from nsml_hpc.catalog.ownership import is_admin
    from nsml_hpc.errors import PermissionRefused

    now = time.time() if now is None else now
    policies = policies or load_policies(locations.config_file())
    owner = user or workspace.catalog.user
    if owner != workspace.catalog.user and not is_admin(workspace.catalog):
        raise PermissionRefused(
            f"gc of {owner}'s sessions: only they or a catalog admin may delete their "
            f"snapshots (you are {workspace.catalog.user}); nothing was changed"
        )
    sessions = list_sessions(workspace.catalog, project=project, owner=owner)
    by_id = {s.id: s for s in sessions if s.id is not None}
    files_for: dict[int, RunFiles] = {}
    errors: list[str] = []
    for session_id, record in by_id.items():
        try:
            files_for[session_id] = workspace.backend_for(record.cluster).files
        except NsmlError as exc:
            errors.append(f"{record.name}: {exc}")
    reachable = {sid: rec for sid, rec in by_id.items() if sid in files_for}
    live = {sid for sid, rec in reachable.items() if is_live(rec.state, rec.ended_at, now)}
    recovery = (
        finish_interrupted(workspace.catalog, reachable, files_for, live) if apply else Recovery()
    )
    damaged: dict[int, set[str]] = {}
    result_damaged: dict[str, str] = {}
    # Checkpoint files are walked for again where new ones may have come (a live session) or
    # known ones may have gone; a finished session's last look was taken by sync at its end.
    with_found = {
        link.session_id for link in found_records(workspace.catalog, list(reachable)).values()
    }
    for session_id, record in reachable.items():
        try:
            problems = refresh_session(
                workspace.catalog,
                files_for[session_id],
                session_id,
                record.name,
                record.run_dir,
                now,
                checkpoints=session_id in live or session_id in with_found,
            )
        except NsmlError as exc:
            errors.append(f"{record.name}: {exc}")
            continue
        damaged[session_id] = set(problems)
        for tag, why in problems.items():
            result_damaged[f"{record.name}:{tag}"] = why
    in_scope = list(reachable.values())
    rows = snapshots_of(workspace.catalog, list(reachable))
    found = set(found_records(workspace.catalog, list(reachable)))
    snapshot_facts, session_facts = _facts(in_scope, rows, damaged, now, found)
    the_plan = plan(snapshot_facts, session_facts, policies, now)
    result = GcResult(
        plan=the_plan,
        applied=apply,
        damaged=result_damaged,
        recovery=recovery,
        errors=errors + recovery.errors,
        names={sid: rec.name for sid, rec in reachable.items()},
    )
    if not apply:
        return result
    row_by_id = {row.id: row for session_rows in rows.values() for row in session_rows}
    for decision in the_plan.deletions:
        snap = decision.snapshot
        label = result.label(snap.session_id, snap.tag)
        try:
            outcome = delete_snapshot(
                workspace.catalog,
                files_for[snap.session_id],
                reachable[snap.session_id],
                row_by_id[snap.id],
            )
        except NsmlError as exc:
            result.errors.append(f"{label}: {exc}")
            continue
        if outcome.done:
            result.deleted.append(label)
            result.freed_bytes += snap.bytes
            if progress is not None:
                progress(f"deleted {label} ({decision.reason})")
        else:
            result.skipped.append(f"{label}: {outcome.message}")
    return result
