"""Things a user does to an existing session: stop it, remove it, read its logs.

The CLI and the TUI call these same functions.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from nsml_hpc.backends.files import RunFiles
from nsml_hpc.catalog.sessions import discard_session, get_session, jobs_of
from nsml_hpc.errors import NsmlError, SpecError
from nsml_hpc.rundir import SESSION_FILE, read_json, remove_run_dir
from nsml_hpc.slurm.states import is_live
from nsml_hpc.sync import SyncReport, sync
from nsml_hpc.workspace import Workspace

FOLLOW_CHUNK = 64 * 1024


def sync_now(workspace: Workspace, clusters: Collection[str] | None = None) -> SyncReport:
    """One sync of every cluster with live sessions (or of ``clusters``)."""
    return sync(workspace.catalog, workspace.settings, workspace.backend_for, clusters=clusters)


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


@dataclass(frozen=True)
class Removed:
    name: str
    run_dir: Path  # on the session's cluster
    purged: bool


def remove_session(workspace: Workspace, name: str, *, purge: bool = False) -> Removed:
    """Forget a finished session; with ``purge`` also delete its run directory (on its
    cluster, through the cluster's backend)."""
    record = get_session(workspace.catalog, name)
    if is_live(record.state, record.ended_at, time.time()):
        raise SpecError(f"session {name} is {record.state}; stop it first (nsml-hpc stop {name})")
    files = workspace.backend_for(record.cluster).files if purge else None
    exists = files is not None and files.exists(record.run_dir)
    if files is not None and exists:
        _check_owned_run_dir(files, record.run_dir, name)
    assert record.id is not None
    discard_session(workspace.catalog, record.id)
    purged = bool(files is not None and exists and remove_run_dir(files, record.run_dir))
    return Removed(name=name, run_dir=Path(record.run_dir), purged=purged)


def _check_owned_run_dir(files: RunFiles, run_dir: str, name: str) -> None:
    """Refuse to delete a folder that is not this session's run directory."""
    document = read_json(files, posixpath.join(run_dir, SESSION_FILE))
    if not isinstance(document, dict) or document.get("name") != name:
        raise NsmlError(f"{run_dir} does not hold session {name}; not deleting it")


def log_paths(workspace: Workspace, name: str) -> list[str]:
    """The Slurm output files of the session (on its cluster), one per job id, oldest first."""
    record = get_session(workspace.catalog, name)
    assert record.id is not None
    jobs = jobs_of(workspace.catalog, [record.id])[record.id]
    return [posixpath.join(record.run_dir, f"slurm-{job.job_id}.out") for job in jobs]


def read_logs(workspace: Workspace, name: str) -> Iterator[bytes]:
    record = get_session(workspace.catalog, name)
    files = workspace.backend_for(record.cluster).files
    offsets: dict[str, int] = {}
    for path in log_paths(workspace, name):
        yield from _new_bytes(files, path, offsets)


def follow_logs(
    workspace: Workspace,
    name: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 1.0,
) -> Iterator[bytes]:
    """Everything the session printed, then new output as it comes, until it has ended.

    The state is refreshed by :func:`sync_now` for the session's cluster only, which honours
    the shared poll floor, so a follower never asks Slurm more often than any other client
    would. On a remote cluster only the new bytes of the log are read each time; a dropped
    connection is opened again at the next round.
    """
    cluster = get_session(workspace.catalog, name).cluster
    offsets: dict[str, int] = {}
    while True:
        failed = False
        try:
            sync_now(workspace, clusters=[cluster])
        except NsmlError:
            failed = True
        record = get_session(workspace.catalog, name)
        try:
            files = workspace.backend_for(cluster).files
            for path in log_paths(workspace, name):
                yield from _new_bytes(files, path, offsets)
        except NsmlError:
            failed = True
        if not failed and not is_live(record.state, record.ended_at, time.time()):
            return
        sleep(max(interval, 0.2))


def _new_bytes(files: RunFiles, path: str, offsets: dict[str, int]) -> Iterator[bytes]:
    while chunk := files.read_from(path, offsets.get(path, 0), FOLLOW_CHUNK):
        offsets[path] = offsets.get(path, 0) + len(chunk)
        yield chunk
