"""Bring the catalog's snapshot rows and job runs up to date with the run directories.

Everything goes through the backend's :class:`~nsml_hpc.backends.files.RunFiles` seam, so it
works wherever a run directory is. It is cheap when nothing changed: one ``stat`` of
``snapshots/`` per session per sync, compared with the mtime stored at the last scan; only a
changed folder is listed, and only a snapshot folder whose own mtime changed has its
manifest read again. An mtime within ``RACY_SECONDS`` of now is not trusted (a second change
in the same tick of a coarse clock would go unseen), so such a folder is read again next time.

Checkpoint files the training code writes itself are stored here too, from what the capture
walk of each session's code folder saw (:mod:`nsml_hpc.snapshots.found`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from nsml_hpc.backends.files import RunFiles
from nsml_hpc.capture.discover import FoundFile
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.snapshots import (
    ScanChanges,
    ScannedSnapshot,
    found_records,
    refresh_job_runs,
    scan_states,
    snapshots_of,
    store_scan,
    unresolved_run_sessions,
)
from nsml_hpc.errors import NsmlError
from nsml_hpc.job.layout import SNAPSHOTS_DIR
from nsml_hpc.job.snapshot_format import (
    MANIFEST_FILE,
    Manifest,
    ManifestError,
    is_listed_name,
    parse_manifest,
)
from nsml_hpc.job.snapshot_store import MAX_MANIFEST_BYTES
from nsml_hpc.snapshots.found import refresh_found, scan_found

RACY_SECONDS = 2.0
FilesFor = Callable[[str], RunFiles]


@dataclass
class SnapshotSyncReport:
    sessions_listed: int = 0
    manifests_read: int = 0
    added: int = 0
    vanished: int = 0
    problems: dict[str, str] = field(default_factory=dict)  # "session:tag" -> why
    # A folder listed while its mtime was too recent to trust is listed again by the next
    # sync after this time (None: none was)
    recheck_at: float | None = None


def racy_before(now: float) -> int:
    """An mtime (ns) at or after this is too recent to trust at ``now``."""
    return int((now - RACY_SECONDS) * 1e9)


def trusted_from(mtime_ns: int) -> float:
    """When an mtime of ``mtime_ns`` is old enough to trust (see :func:`racy_before`)."""
    return mtime_ns / 1e9 + RACY_SECONDS


def snapshots_path(run_dir: str) -> str:
    return f"{run_dir}/{SNAPSHOTS_DIR}"


def verify_files(files: RunFiles, folder: str, manifest: Manifest) -> str | None:
    """Why a snapshot folder no longer matches its manifest, or None (one stat per file)."""
    missing: list[str] = []
    resized: list[str] = []
    for entry in manifest.files:
        info = files.stat(f"{folder}/{entry.path}")
        if info is None or info.is_dir:
            missing.append(entry.path)
        elif info.size != entry.size:
            resized.append(entry.path)
    parts = []
    if missing:
        parts.append("missing " + ", ".join(missing[:5]) + (" …" if len(missing) > 5 else ""))
    if resized:
        parts.append("size changed " + ", ".join(resized[:5]) + (" …" if len(resized) > 5 else ""))
    return "; ".join(parts) or None


def read_snapshot(files: RunFiles, folder: str, tag: str, mtime_ns: int) -> ScannedSnapshot:
    raw = files.read_bytes(f"{folder}/{MANIFEST_FILE}", MAX_MANIFEST_BYTES)
    if raw is None:
        return ScannedSnapshot(tag, mtime_ns, None, "manifest.json is missing")
    if len(raw) > MAX_MANIFEST_BYTES:
        return ScannedSnapshot(tag, mtime_ns, None, "manifest.json is too large")
    try:
        manifest = parse_manifest(json.loads(raw), tag)
    except ValueError as exc:  # ManifestError and JSON errors
        message = str(exc) if isinstance(exc, ManifestError) else "manifest.json is not JSON"
        return ScannedSnapshot(tag, mtime_ns, None, message)
    return ScannedSnapshot(tag, mtime_ns, manifest, verify_files(files, folder, manifest))


def scan_session(
    catalog: Catalog,
    files: RunFiles,
    session_id: int,
    run_dir: str,
    now: float,
    *,
    dir_mtime_ns: int,
    reread_all: bool = False,
) -> tuple[ScanChanges, list[ScannedSnapshot], int]:
    """List one session's snapshot folder and store what changed; returns the changes, the
    snapshots read (with their problems) and how many manifests were read."""
    root = snapshots_path(run_dir)
    entries = files.list_dir(root) or []
    known = {row.tag: row for row in snapshots_of(catalog, [session_id])[session_id]}
    racy_ns = racy_before(now)
    present: set[str] = set()
    changed: list[ScannedSnapshot] = []
    for entry in entries:
        if not entry.is_dir or not is_listed_name(entry.name):
            continue
        present.add(entry.name)
        row = known.get(entry.name)
        unchanged = (
            row is not None and row.dir_mtime_ns == entry.mtime_ns and entry.mtime_ns < racy_ns
        )
        if unchanged and not reread_all:
            continue
        scanned = read_snapshot(files, f"{root}/{entry.name}", entry.name, entry.mtime_ns)
        if entry.mtime_ns >= racy_ns:
            scanned = ScannedSnapshot(scanned.tag, 0, scanned.manifest, scanned.problem)
        changed.append(scanned)
    trusted_dir_mtime = dir_mtime_ns if dir_mtime_ns < racy_ns else 0
    changes = store_scan(catalog, session_id, changed, present, trusted_dir_mtime, now)
    return changes, changed, len(changed)


def refresh_session(
    catalog: Catalog,
    files: RunFiles,
    session_id: int,
    name: str,
    run_dir: str,
    now: float,
    *,
    checkpoints: bool = True,
) -> dict[str, str]:
    """Re-read every snapshot of one session (``model ls``, ``model du``, gc), and (with
    ``checkpoints``) walk its code folder for checkpoint files again: catches hand edits the
    cheap sync gate cannot see. Returns the damaged ones (and checkpoints still being
    written): tag -> why."""
    info = files.stat(snapshots_path(run_dir))
    _, scanned, _ = scan_session(
        catalog,
        files,
        session_id,
        run_dir,
        now,
        dir_mtime_ns=info.mtime_ns if info else 0,
        reread_all=True,
    )
    problems = {item.tag: item.problem for item in scanned if item.problem}
    if checkpoints:
        problems.update(refresh_found(catalog, files, session_id, run_dir, now))
    return problems


def sync_snapshots(
    catalog: Catalog,
    targets: Sequence[tuple[int, str, str]],
    files_for: FilesFor,
    now: float,
    *,
    sessions_with_new_events: Sequence[int] = (),
    names: dict[int, str] | None = None,
    found: dict[int, list[FoundFile]] | None = None,
) -> SnapshotSyncReport:
    """The snapshot and job-run part of a sync, for ``targets`` (id, cluster, run_dir);
    ``found``: the checkpoint files each session's capture walk saw in this sync."""
    report = SnapshotSyncReport()
    states = scan_states(catalog, [session_id for session_id, _, _ in targets])
    # A walk that saw no checkpoint changes nothing unless the session had some (one query).
    had_found = (
        {link.session_id for link in found_records(catalog, list(found)).values()}
        if found
        else set()
    )
    for session_id, cluster, run_dir in targets:
        try:
            files = files_for(cluster)
            if found and (found.get(session_id) or session_id in had_found):
                seen = found.get(session_id, [])
                changes = scan_found(catalog, files, session_id, run_dir, seen, now)
                report.added += len(changes.added)
                report.vanished += len(changes.vanished)
            info = files.stat(snapshots_path(run_dir))
        except NsmlError:
            continue  # the cluster's error is already in the sync report
        if info is None or not info.is_dir:
            if session_id in states and states[session_id] != 0:
                changes, _, _ = scan_session(
                    catalog, files, session_id, run_dir, now, dir_mtime_ns=0
                )
                report.vanished += len(changes.vanished)
            continue
        if states.get(session_id) == info.mtime_ns and info.mtime_ns != 0:
            continue
        try:
            changes, scanned, read = scan_session(
                catalog, files, session_id, run_dir, now, dir_mtime_ns=info.mtime_ns
            )
        except NsmlError as exc:
            report.problems[str(session_id)] = str(exc)
            continue
        report.sessions_listed += 1
        if info.mtime_ns >= racy_before(now):  # stored as untrusted: listed again when trusted
            at = trusted_from(info.mtime_ns)
            report.recheck_at = at if report.recheck_at is None else min(report.recheck_at, at)
        report.manifests_read += read
        report.added += len(changes.added)
        report.vanished += len(changes.vanished)
        label = (names or {}).get(session_id, str(session_id))
        for item in scanned:
            if item.problem:
                report.problems[f"{label}:{item.tag}"] = item.problem
    target_ids = [session_id for session_id, _, _ in targets]
    pending = set(sessions_with_new_events) | set(unresolved_run_sessions(catalog, target_ids))
    refresh_job_runs(catalog, sorted(pending))
    return report
