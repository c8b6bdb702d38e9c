"""Things a user does to an existing session: sync, stop it, remove it, read its logs, change
its memo (its snapshots are :mod:`nsml_hpc.snapshots.actions`', forking is
:func:`nsml_hpc.snapshots.fork.fork_session`).

The CLI and the TUI reach these through :class:`nsml_hpc.workspace.Workspace`. Changes are
the owner's (:mod:`nsml_hpc.catalog.ownership`): another user's session is refused before
anything is touched.
"""

from __future__ import annotations

import posixpath
import secrets
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from nsml_hpc.backends.files import RunFiles
from nsml_hpc.catalog.ownership import check_owner
from nsml_hpc.catalog.sessions import (
    discard_session,
    get_session,
    jobs_of,
    update_memo,
)
from nsml_hpc.context import Context
from nsml_hpc.errors import NsmlError, SpecError
from nsml_hpc.job.layout import SESSION_FILE, TEMP_MARK, slurm_output
from nsml_hpc.job.spec import validate_memo
from nsml_hpc.slurm.states import is_live
from nsml_hpc.submit.rundir import read_json, remove_run_dir
from nsml_hpc.sync.run import SyncReport, sync

FOLLOW_CHUNK = 64 * 1024


def sync_now(
    workspace: Context, clusters: Collection[str] | None = None, *, refresh: bool = False
) -> SyncReport:
    """One sync of every cluster with live sessions of the caller (or of ``clusters``);
    ``refresh``: a user asked, so Slurm is asked as soon as the poll floor allows."""
    return sync(
        workspace.catalog,
        workspace.settings,
        workspace.backend_for,
        clusters=clusters,
        refresh=refresh,
    )


def stop_session(workspace: Context, name: str) -> list[str]:
    """Ask Slurm to cancel the session's live job (one scancel call); returns the job ids."""
    record = get_session(workspace.catalog, name)
    check_owner(workspace.catalog, record, "stop")
    if not is_live(record.state, record.ended_at, time.time()):
        raise SpecError(f"session {name} is already {record.state}")
    assert record.id is not None
    job_ids = [job.job_id for job in jobs_of(workspace.catalog, [record.id])[record.id]]
    live = job_ids[-1:]
    workspace.backend_for(record.cluster).cancel(live)
    return live


def stop_idle_sessions(workspace: Context, min_idle_seconds: float) -> list[tuple[str, float]]:
    """Cancel the caller's running sessions (everyone's, for a catalog admin) whose GPUs all
    sat at 0 % for ``min_idle_seconds`` or more: one scancel per cluster. Returns (session,
    idle seconds) of those cancelled."""
    from nsml_hpc.catalog.ownership import is_admin
    from nsml_hpc.sessions.views import session_rows

    owner = None if is_admin(workspace.catalog) else workspace.catalog.user
    idle = [
        row
        for row in session_rows(workspace.catalog, owner=owner)
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
    run_dir: Path  # on the session's cluster
    purged: bool
    leftover: str | None = None  # a renamed run directory that could not be deleted


def remove_session(workspace: Context, name: str, *, purge: bool = False) -> Removed:
    """Forget a finished session of the caller's; with ``purge`` also delete its run
    directory (on its cluster, through the cluster's backend).

    The purge is ordered so that no failure leaves a catalog row without its folder or a run
    directory without its row: the folder is first renamed to a temporary name beside it
    (``.N.tmp-purge-...``; a refusal, e.g. no permission, changes nothing), then the rows go,
    then the renamed folder is deleted. Should the rows not go, the folder is renamed back;
    should the last delete fail, what is left is a temporary folder (``leftover``), which the
    next submit into the project clears after an hour, not a run directory.
    """
    record = get_session(workspace.catalog, name)
    check_owner(workspace.catalog, record, "remove")
    if is_live(record.state, record.ended_at, time.time()):
        raise SpecError(f"session {name} is {record.state}; stop it first (nsml-hpc stop {name})")
    assert record.id is not None
    files = workspace.backend_for(record.cluster).files if purge else None
    if files is None or not files.exists(record.run_dir):
        discard_session(workspace.catalog, record.id, retire=True)
        return Removed(name=name, run_dir=Path(record.run_dir), purged=False)
    _check_owned_run_dir(files, record.run_dir, record.name)
    _check_not_forked_from(workspace, record.id, name)
    parent, number = posixpath.split(record.run_dir.rstrip("/"))
    trash = posixpath.join(parent, f".{number}{TEMP_MARK}purge-{secrets.token_hex(4)}")
    files.rename(record.run_dir, trash)  # refused (no permission, ...): nothing changed
    try:
        discard_session(workspace.catalog, record.id, retire=True)
    except BaseException as exc:
        try:
            files.rename(trash, record.run_dir)
        except NsmlError as back:
            exc.add_note(f"the run directory is at {trash}; rename it back: {back}")
        raise
    try:
        remove_run_dir(files, trash)
    except NsmlError:
        return Removed(name=name, run_dir=Path(record.run_dir), purged=False, leftover=trash)
    return Removed(name=name, run_dir=Path(record.run_dir), purged=True)


def _check_not_forked_from(workspace: Context, session_id: int, name: str) -> None:
    """``--purge`` deletes the snapshots too: never those another session was forked from."""
    from nsml_hpc.catalog.snapshots import children_of

    children = children_of(workspace.catalog, session_id)
    if children:
        shown = ", ".join(f"{child} (from {tag})" for child, tag in children)
        raise SpecError(
            f"sessions were forked from snapshots of {name}: {shown}; remove them first, "
            "or remove without --purge (the run directory stays)"
        )


def _check_owned_run_dir(files: RunFiles, run_dir: str, name: str) -> None:
    """Refuse to delete a folder that is not this session's run directory."""
    document = read_json(files, posixpath.join(run_dir, SESSION_FILE))
    if not isinstance(document, dict) or document.get("name") != name:
        raise NsmlError(f"{run_dir} does not hold session {name}; not deleting it")


def log_paths(workspace: Context, name: str) -> list[str]:
    """The Slurm output files of the session (on its cluster), one per job id, oldest first."""
    record = get_session(workspace.catalog, name)
    assert record.id is not None
    jobs = jobs_of(workspace.catalog, [record.id])[record.id]
    return [posixpath.join(record.run_dir, slurm_output(job.job_id)) for job in jobs]


def read_logs(workspace: Context, name: str) -> Iterator[bytes]:
    record = get_session(workspace.catalog, name)
    files = workspace.backend_for(record.cluster).files
    offsets: dict[str, int] = {}
    for path in log_paths(workspace, name):
        yield from _new_bytes(files, path, offsets)


@dataclass(frozen=True)
class StateNote:
    """What a follower is told between chunks of output: the session's state changed (or
    following it hit a problem it will retry)."""

    session: str
    state: str
    reason: str | None
    text: str  # "PENDING (Resources)", "RUNNING", "cluster hpc unreachable: ..."
    job_ids: tuple[str, ...] = ()
    problem: bool = False


def follow_session(
    workspace: Context,
    name: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 1.0,
) -> Iterator[bytes | StateNote]:
    """The session's output as it comes, with a :class:`StateNote` first and whenever its
    state or pending reason changes, until it has ended: a follower of a pending session
    sees why it waits instead of silence.

    The state is refreshed by :func:`sync_now` for the session's cluster only, which honours
    the shared poll floor, so a follower never asks Slurm more often than any other client
    would. On a remote cluster only the new bytes of the log are read each time; a dropped
    connection is opened again at the next round (and said once, as a problem note).
    """
    from nsml_hpc.sessions.views import format_state

    cluster = get_session(workspace.catalog, name).cluster
    offsets: dict[str, int] = {}
    shown: tuple[str, str | None] | None = None
    problem_shown: str | None = None
    while True:
        failed: str | None = None
        try:
            report = sync_now(workspace, clusters=[cluster])
            failed = report.errors.get(cluster)
        except NsmlError as exc:
            failed = str(exc)
        record = get_session(workspace.catalog, name)
        assert record.id is not None
        if (record.state, record.reason) != shown:
            shown = (record.state, record.reason)
            jobs = tuple(job.job_id for job in jobs_of(workspace.catalog, [record.id])[record.id])
            text = format_state(record.state, record.reason, record.exit_code)
            yield StateNote(name, record.state, record.reason, text, jobs)
        try:
            files = workspace.backend_for(cluster).files
            for path in log_paths(workspace, name):
                yield from _new_bytes(files, path, offsets)
        except NsmlError as exc:
            failed = failed or str(exc)
        if failed and failed != problem_shown:
            problem_shown = failed
            yield StateNote(name, record.state, record.reason, failed, problem=True)
        if not failed and not is_live(record.state, record.ended_at, time.time()):
            return
        sleep(max(interval, 0.2))


def follow_logs(
    workspace: Context,
    name: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 1.0,
) -> Iterator[bytes]:
    """Everything the session printed, then new output as it comes, until it has ended
    (:func:`follow_session` without the state notes)."""
    for item in follow_session(workspace, name, sleep=sleep, interval=interval):
        if isinstance(item, bytes):
            yield item


def _new_bytes(files: RunFiles, path: str, offsets: dict[str, int]) -> Iterator[bytes]:
    while chunk := files.read_from(path, offsets.get(path, 0), FOLLOW_CHUNK):
        offsets[path] = offsets.get(path, 0) + len(chunk)
        yield chunk


def set_memo(workspace: Context, name: str, memo: str) -> None:
    """Replace the memo of one of the caller's sessions (one line, at most 1000 characters)."""
    record = get_session(workspace.catalog, name)
    check_owner(workspace.catalog, record, "change the memo of")
    assert record.id is not None
    update_memo(workspace.catalog, record.id, validate_memo(memo.strip()), now=time.time())
