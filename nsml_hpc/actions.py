"""Things a user does to an existing session: stop it, remove it, read its logs, change its
memo, fork it, pin or delete one of its snapshots.

The CLI and the TUI call these same functions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nsml_hpc.catalog.sessions import discard_session, get_session, jobs_of, update_memo
from nsml_hpc.errors import NotFoundError, NsmlError, SpecError
from nsml_hpc.rundir import CODE_DIR, SESSION_FILE, remove_run_dir
from nsml_hpc.slurm.states import is_live
from nsml_hpc.snapshot_files import SnapshotInfo, list_snapshots, remove_snapshot, set_pinned
from nsml_hpc.spec import SessionSpec, validate_memo
from nsml_hpc.sync import SyncReport, sync
from nsml_hpc.workspace import Workspace

if TYPE_CHECKING:
    from nsml_hpc.submit import Submitted

FOLLOW_CHUNK = 64 * 1024


def sync_now(workspace: Workspace) -> SyncReport:
    return sync(workspace.catalog, workspace.settings, workspace.backend_for)


def stop_session(workspace: Workspace, name: str) -> list[str]:
    """Ask Slurm to cancel the session's live job (one scancel call); returns the job ids."""
    record = get_session(workspace.catalog, name)
    if not is_live(record.state, record.ended_at, time.time()):
        raise SpecError(f"session {name} is already {record.state}")
    assert record.id is not None
    job_ids = [job.job_id for job in jobs_of(workspace.catalog, [record.id])[record.id]]
    live = job_ids[-1:]
    workspace.backend_for(record.cluster).cancel(live)
    return live


def stop_idle_sessions(workspace: Workspace, min_idle_seconds: float) -> list[tuple[str, float]]:
    """Cancel running sessions whose GPUs all sat at 0 % for ``min_idle_seconds`` or more:
    one scancel per cluster. Returns (session, idle seconds) of those cancelled."""
    from nsml_hpc.views import session_rows

    idle = [
        row
        for row in session_rows(workspace.catalog)
        if row.state == "RUNNING" and row.gpu_idle_s >= min_idle_seconds and row.job_ids
    ]
    by_cluster: dict[str, list[str]] = {}
    for row in idle:
        by_cluster.setdefault(row.cluster, []).append(row.job_ids[-1])
    for cluster, job_ids in sorted(by_cluster.items()):
        workspace.backend_for(cluster).cancel(job_ids)
    return [(row.name, row.gpu_idle_s) for row in idle]


@dataclass(frozen=True)
class Removed:
    name: str
    run_dir: Path
    purged: bool


def remove_session(workspace: Workspace, name: str, *, purge: bool = False) -> Removed:
    """Forget a finished session; with ``purge`` also delete its run directory."""
    record = get_session(workspace.catalog, name)
    if is_live(record.state, record.ended_at, time.time()):
        raise SpecError(f"session {name} is {record.state}; stop it first (nsml-hpc stop {name})")
    run_dir = Path(record.run_dir)
    assert record.id is not None
    if purge and run_dir.exists():
        _check_owned_run_dir(run_dir, name)
        _check_not_forked_from(workspace, record.id, name)
    discard_session(workspace.catalog, record.id)
    purged = bool(purge and run_dir.exists() and remove_run_dir(run_dir))
    return Removed(name=name, run_dir=run_dir, purged=purged)


def _check_not_forked_from(workspace: Workspace, session_id: int, name: str) -> None:
    """``--purge`` deletes the snapshots too: never those another session was forked from."""
    from nsml_hpc.catalog.snapshots import children_of

    children = children_of(workspace.catalog, session_id)
    if children:
        shown = ", ".join(f"{child} (from {tag})" for child, tag in children)
        raise SpecError(
            f"sessions were forked from snapshots of {name}: {shown}; remove them first, "
            "or remove without --purge (the run directory stays)"
        )


def _check_owned_run_dir(run_dir: Path, name: str) -> None:
    """Refuse to delete a folder that is not this session's run directory."""
    try:
        document = json.loads((run_dir / SESSION_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        document = {}
    if document.get("name") != name:
        raise NsmlError(f"{run_dir} does not hold session {name}; not deleting it")


def log_paths(workspace: Workspace, name: str) -> list[Path]:
    """The Slurm output files of the session, one per job id, oldest first."""
    record = get_session(workspace.catalog, name)
    assert record.id is not None
    jobs = jobs_of(workspace.catalog, [record.id])[record.id]
    return [Path(record.run_dir) / f"slurm-{job.job_id}.out" for job in jobs]


def read_logs(workspace: Workspace, name: str) -> Iterator[bytes]:
    for path in log_paths(workspace, name):
        try:
            yield path.read_bytes()
        except FileNotFoundError:
            continue


def follow_logs(
    workspace: Workspace,
    name: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 1.0,
) -> Iterator[bytes]:
    """Everything the session printed, then new output as it comes, until it has ended.

    The state is refreshed by :func:`sync_now`, which honours the shared poll floor, so a
    follower never asks Slurm more often than any other client would.
    """
    offsets: dict[Path, int] = {}
    while True:
        sync_failed = False
        try:
            sync_now(workspace)
        except NsmlError:
            sync_failed = True
        record = get_session(workspace.catalog, name)
        for path in log_paths(workspace, name):
            yield from _new_bytes(path, offsets)
        if not sync_failed and not is_live(record.state, record.ended_at, time.time()):
            return
        sleep(max(interval, 0.2))


def _new_bytes(path: Path, offsets: dict[Path, int]) -> Iterator[bytes]:
    try:
        with path.open("rb") as handle:
            handle.seek(offsets.get(path, 0))
            while chunk := handle.read(FOLLOW_CHUNK):
                offsets[path] = offsets.get(path, 0) + len(chunk)
                yield chunk
    except FileNotFoundError:
        return


def set_memo(workspace: Workspace, name: str, memo: str) -> None:
    """Replace the session's memo (one line, at most 1000 characters)."""
    update_memo(workspace.catalog, name, validate_memo(memo.strip()), now=time.time())


def session_snapshots(workspace: Workspace, name: str) -> list[SnapshotInfo]:
    """The session's complete snapshots, read from its run directory."""
    return list_snapshots(Path(get_session(workspace.catalog, name).run_dir))


def pin_snapshot(workspace: Workspace, name: str, tag: str, *, pinned: bool = True) -> SnapshotInfo:
    """Pin (keep from any cleanup) or unpin one snapshot of the session."""
    return set_pinned(Path(get_session(workspace.catalog, name).run_dir), tag, pinned)


def delete_snapshot(workspace: Workspace, name: str, tag: str) -> Path:
    """Delete one unpinned snapshot of the session; returns the folder that was removed."""
    return remove_snapshot(Path(get_session(workspace.catalog, name).run_dir), tag)


@dataclass(frozen=True)
class ForkRequest:
    """What the fork form asks: a snapshot to start from, changed hyperparameters, GPUs."""

    snapshot: str | None = None
    changes: dict[str, str] | None = None
    gpus: int | None = None
    memo: str | None = None


def fork_session(workspace: Workspace, name: str, request: ForkRequest) -> Submitted:
    """Submit a new session from ``name``'s spec and code with the requested changes."""
    from nsml_hpc.forking import fork_spec
    from nsml_hpc.submit import prepare, submit

    record = get_session(workspace.catalog, name)
    run_dir = Path(record.run_dir)
    code_root = run_dir / CODE_DIR
    if not code_root.is_dir():
        raise NotFoundError(f"the code snapshot of {name} is gone ({code_root})")
    resume_from: str | None = None
    if request.snapshot:
        found = {info.tag: info for info in list_snapshots(run_dir)}
        if request.snapshot not in found:
            raise NotFoundError(f"{name} has no snapshot {request.snapshot!r}")
        resume_from = str(found[request.snapshot].path.resolve())
    parent = SessionSpec.from_dict(json.loads(record.spec_json))
    memo = request.memo
    if memo is None:
        memo = f"fork of {name}" + (f" from {request.snapshot}" if request.snapshot else "")
    spec = fork_spec(
        parent, changes=request.changes, gpus=request.gpus, memo=memo, resume_from=resume_from
    )
    prepared = prepare(spec, workspace.settings, code_root)
    return submit(
        prepared, workspace.catalog, workspace.settings, workspace.backend_for(spec.cluster)
    )
