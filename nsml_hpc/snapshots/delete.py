"""Deleting a snapshot so that a ``kill -9`` at any instant leaves the catalog and the disk
consistent, and never touching anything outside the session's own ``snapshots/`` folder.

The order (each step durable before the next):

1. **claim** the catalog row (one conditional UPDATE: not pinned, not forked from, not claimed
   by another process) -- the row is now hidden from ``model ls`` and from gc's plans;
2. **rename** ``snapshots/<tag>`` to ``snapshots/.deleting-<tag>-<row id>`` -- the folder is
   now hidden from every reader, including a requeued job looking for its latest snapshot
   (a half-deleted folder must never look like a snapshot);
3. **drop** the catalog row;
4. **remove** the renamed folder.

:func:`finish_interrupted` completes whatever a crash left between two steps: a claimed row
whose folder still has its name (same manifest) is deleted the same way; a claimed row whose
folder was renamed is dropped; a ``.deleting-`` folder is removed. Every path is built from a
session's run directory and a name checked to be one plain folder name, and the backend's
``remove_tree`` refuses anything that is not a real folder directly in ``snapshots/``.

A **found checkpoint** (a file the training code wrote in its code folder) is deleted in the
same spirit: claim the row; move the file into a hidden folder ``.nsml-deleting-<row id>``
made beside it (the file is now invisible to every reader and to the next walk); remove that
folder; drop the row. A crash between two steps leaves a claimed row that
:func:`finish_interrupted` completes. The file's path must be a safe path inside the
session's ``code/`` folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nsml_hpc.backends.files import RunFiles
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.catalog.snapshot_models import FoundCheckpointRecord, SnapshotRecord
from nsml_hpc.catalog.snapshots import (
    claim_deletion,
    claimed_rows,
    drop_snapshot_row,
    found_records,
    release_claim,
)
from nsml_hpc.errors import BackendError, NsmlError, UnsafePath
from nsml_hpc.job.layout import CODE_DIR
from nsml_hpc.job.snapshot_format import (
    DELETING_PREFIX,
    OLD_PREFIX,
    TMP_PREFIX,
    is_listed_name,
    safe_relative,
)
from nsml_hpc.snapshots.sync import read_snapshot, snapshots_path

_DELETING = re.compile(rf"^{re.escape(DELETING_PREFIX)}(?P<tag>.+)-(?P<id>[0-9]+)$")


def snapshot_folder(run_dir: str, name: str) -> str:
    """``<run_dir>/snapshots/<name>``, refusing any name that is not one plain folder name."""
    if (
        not name
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or name in (".", "..")
        or not run_dir.startswith("/")
        or "/../" in f"{run_dir}/"
        or "/./" in f"{run_dir}/"
    ):
        raise UnsafePath(f"refusing to touch {run_dir!r}/{name!r}: not a snapshot folder")
    return f"{snapshots_path(run_dir.rstrip('/'))}/{name}"


def deleting_name(tag: str, row_id: int) -> str:
    return f"{DELETING_PREFIX}{tag}-{row_id}"


@dataclass
class Deleted:
    done: bool
    message: str = ""


FOUND_DELETING_PREFIX = ".nsml-deleting-"


def found_paths(run_dir: str, link: FoundCheckpointRecord) -> tuple[str, str, str]:
    """(the file, the hidden folder it is moved into, their folder) of a found checkpoint,
    refusing a path that is not a plain relative path inside the code folder."""
    relative = link.path
    if (
        not safe_relative(relative)
        or not relative.startswith(f"{CODE_DIR}/")
        or not run_dir.startswith("/")
        or "/../" in f"{run_dir}/"
    ):
        raise UnsafePath(f"refusing to touch {run_dir!r}/{relative!r}: not a checkpoint file")
    path = f"{run_dir.rstrip('/')}/{relative}"
    folder = path.rsplit("/", 1)[0]
    return path, f"{folder}/{FOUND_DELETING_PREFIX}{link.snapshot_id}", folder


def _delete_found(
    catalog: Catalog,
    files: RunFiles,
    session: SessionRecord,
    row: SnapshotRecord,
    link: FoundCheckpointRecord,
) -> Deleted:
    assert row.id is not None
    path, hidden, folder = found_paths(session.run_dir, link)
    if not claim_deletion(catalog, row.id):
        return Deleted(False, "pinned, forked from, or being deleted by another process")
    try:
        _finish_found(files, path, hidden, folder)
    except NsmlError as exc:
        if files.stat(path) is not None:
            release_claim(catalog, row.id)  # still in place: nothing happened
        return Deleted(False, f"cannot delete it: {exc}")
    drop_snapshot_row(catalog, row.id)
    return Deleted(True)


def _finish_found(files: RunFiles, path: str, hidden: str, folder: str) -> None:
    """Move the file into the hidden folder (if it is still in place), remove the folder."""
    info = files.stat(path)
    if info is not None:
        if info.is_dir:
            raise UnsafePath(f"refusing to delete {path}: a folder, not a checkpoint file")
        files.make_dirs(hidden)
        files.rename(path, f"{hidden}/{path.rsplit('/', 1)[1]}")
    if files.stat(hidden) is not None:
        files.remove_tree(hidden, inside=folder)


def delete_snapshot(
    catalog: Catalog, files: RunFiles, session: SessionRecord, row: SnapshotRecord
) -> Deleted:
    """Delete one snapshot in the crash-safe order; ``done`` False if it was not ours to
    delete (protected, or claimed by another process meanwhile) or the disk refused."""
    assert row.id is not None
    if row.session_id == session.id:
        link = found_records(catalog, [row.session_id]).get(row.id)
        if link is not None:
            return _delete_found(catalog, files, session, row, link)
    if row.session_id != session.id or not is_listed_name(row.tag):
        raise UnsafePath(f"snapshot row {row.id} does not belong to {session.name}")
    folder = snapshot_folder(session.run_dir, row.tag)
    hidden = snapshot_folder(session.run_dir, deleting_name(row.tag, row.id))
    if not claim_deletion(catalog, row.id):
        return Deleted(False, "pinned, forked from, or being deleted by another process")
    try:
        if files.stat(folder) is not None:
            files.rename(folder, hidden)
    except NsmlError as exc:
        release_claim(catalog, row.id)
        return Deleted(False, f"cannot rename it: {exc}")
    drop_snapshot_row(catalog, row.id)
    if files.stat(hidden) is not None:
        files.remove_tree(hidden, inside=snapshots_path(session.run_dir.rstrip("/")))
    return Deleted(True)


@dataclass
class Recovery:
    finished: list[str] = field(default_factory=list)  # "session:tag" deletions completed
    released: list[str] = field(default_factory=list)  # claims undone (the tag was replaced)
    cleaned: list[str] = field(default_factory=list)  # leftover folders removed or restored
    errors: list[str] = field(default_factory=list)


def finish_interrupted(
    catalog: Catalog,
    sessions: dict[int, SessionRecord],
    files_for: dict[int, RunFiles],
    live: set[int],
) -> Recovery:
    """Complete deletions a crash interrupted, and remove what crashed saves left behind in
    sessions that are no longer running (``.tmp-`` folders, replaced ``.old-`` folders)."""
    recovery = Recovery()
    claimed = claimed_rows(catalog)
    links = found_records(catalog, sorted({row.session_id for row in claimed}))
    for row in claimed:
        session = sessions.get(row.session_id)
        if session is None or row.id is None:
            continue
        files = files_for[row.session_id]
        label = f"{session.name}:{row.tag}"
        link = links.get(row.id)
        if link is not None:
            try:
                path, hidden, folder = found_paths(session.run_dir, link)
                info = files.stat(path)
                if info is not None and info.mtime_ns != link.mtime_ns:
                    release_claim(catalog, row.id)  # the training code wrote it again
                    recovery.released.append(label)
                    continue
                _finish_found(files, path, hidden, folder)
                drop_snapshot_row(catalog, row.id)
                recovery.finished.append(label)
            except NsmlError as exc:
                recovery.errors.append(f"{label}: {exc}")
            continue
        try:
            folder = snapshot_folder(session.run_dir, row.tag)
            hidden = snapshot_folder(session.run_dir, deleting_name(row.tag, row.id))
            if files.stat(folder) is not None and files.stat(hidden) is None:
                scanned = read_snapshot(files, folder, row.tag, 0)
                if scanned.manifest is not None and scanned.manifest.created != row.created_at:
                    release_claim(catalog, row.id)  # the job saved this tag again meanwhile
                    recovery.released.append(label)
                    continue
                files.rename(folder, hidden)
            drop_snapshot_row(catalog, row.id)
            if files.stat(hidden) is not None:
                files.remove_tree(hidden, inside=snapshots_path(session.run_dir.rstrip("/")))
            recovery.finished.append(label)
        except NsmlError as exc:
            recovery.errors.append(f"{label}: {exc}")
    for session_id, session in sessions.items():
        try:
            _clean_leftovers(session, files_for[session_id], session_id in live, recovery)
        except NsmlError as exc:
            recovery.errors.append(f"{session.name}: {exc}")
    return recovery


def _clean_leftovers(
    session: SessionRecord, files: RunFiles, live: bool, recovery: Recovery
) -> None:
    root = snapshots_path(session.run_dir.rstrip("/"))
    entries = files.list_dir(root)
    if not entries:
        return
    names = {entry.name for entry in entries}
    for entry in entries:
        if not entry.is_dir:
            continue
        name = entry.name
        if name.startswith(DELETING_PREFIX) and _DELETING.match(name):
            files.remove_tree(snapshot_folder(session.run_dir, name), inside=root)
            recovery.cleaned.append(f"{session.name}:{name}")
        elif live:
            continue  # the job may be saving right now; its wrapper cleans up on restart
        elif name.startswith(TMP_PREFIX):
            files.remove_tree(snapshot_folder(session.run_dir, name), inside=root)
            recovery.cleaned.append(f"{session.name}:{name}")
        elif name.startswith(OLD_PREFIX):
            tag = name[len(OLD_PREFIX) :].rsplit("-", 2)[0]
            if is_listed_name(tag) and tag not in names:
                try:
                    files.rename(
                        snapshot_folder(session.run_dir, name),
                        snapshot_folder(session.run_dir, tag),
                    )
                except BackendError:
                    continue
                names.add(tag)
                recovery.cleaned.append(f"{session.name}:{name} restored as {tag}")
            else:
                files.remove_tree(snapshot_folder(session.run_dir, name), inside=root)
                recovery.cleaned.append(f"{session.name}:{name}")
