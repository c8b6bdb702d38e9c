"""The run directory on the cluster (the only contract between a job and the front end):
where it lives, its small documents, and the one guarded way to delete one. Its names are in
:mod:`nsml_hpc.job.layout`. Paths are POSIX strings on the cluster and every access goes
through the backend's :class:`~nsml_hpc.backends.files.RunFiles`.
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Any

from nsml_hpc.backends.files import RunFiles
from nsml_hpc.config.cluster_profiles import DEFAULT_REMOTE_RUN_ROOT, ClusterProfile
from nsml_hpc.job.layout import JOB_ID_MARKER, PRIVATE_DIR, SESSION_FILE, TEMP_MARK
from nsml_hpc.submit.render import check_cluster_path


def project_dir(run_root: str, user: str, project: str) -> str:
    return posixpath.join(run_root, user, project)


def run_root_for(profile: ClusterProfile, default: Path, files: RunFiles) -> str:
    """The cluster's run root: the profile's, else ``default`` (this machine) or
    ``~/nsml-runs`` (remote); relative remote roots live under the account's home."""
    root = profile.run_root
    if not profile.remote:
        path = Path(root).expanduser() if root else default
        resolved = str(path.resolve())
    else:
        root = root or DEFAULT_REMOTE_RUN_ROOT
        root = "" if root == "~" else root.removeprefix("~/")
        resolved = root if root.startswith("/") else posixpath.join(files.home(), root)
        resolved = posixpath.normpath(resolved)
    return check_cluster_path(f"run_root of cluster {profile.name}", resolved)


def json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode()


def read_json(files: RunFiles, path: str, limit: int = 16 * 1024 * 1024) -> Any:
    """A JSON document of the run directory, or None if missing or not JSON."""
    raw = files.read_from(path, 0, limit)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


JOB_ID_TEXT = re.compile(r"[0-9]+(?:_[0-9]+)?")  # a job id, or an array task's ARRAY_TASK


def sweep_job_id_marker(sweep_dir: str, chunk: int) -> str:
    """Where a sweep records the id of its ``chunk``-th array, right after sbatch answered:
    one file for the thousand sessions of the array (each session.json names its chunk and
    task), not one per session."""
    return posixpath.join(sweep_dir, PRIVATE_DIR, f"array-{chunk}.{JOB_ID_MARKER}")


def write_job_id_marker(files: RunFiles, run_dir: str, job_id: str) -> None:
    files.write_bytes(posixpath.join(run_dir, PRIVATE_DIR, JOB_ID_MARKER), f"{job_id}\n".encode())


def _job_id_in(files: RunFiles, path: str) -> str | None:
    text = files.read_from(path, 0, 64).decode("ascii", "replace").strip()
    return text if JOB_ID_TEXT.fullmatch(text) else None


def read_job_id_marker(files: RunFiles, run_dir: str) -> str | None:
    """The job id a submit recorded for ``run_dir`` right after sbatch answered: its own
    ``.nsml/job_id``, or for a sweep's session its array's marker in the sweep directory
    plus its task (``ARRAY_TASK``); None when sbatch never answered."""
    own = _job_id_in(files, posixpath.join(run_dir, PRIVATE_DIR, JOB_ID_MARKER))
    if own is not None:
        return own
    document = read_json(files, posixpath.join(run_dir, SESSION_FILE))
    sweep = document.get("sweep") if isinstance(document, dict) else None
    if not isinstance(sweep, dict):
        return None
    folder, chunk, task = sweep.get("dir"), sweep.get("array_chunk"), sweep.get("array_task")
    if not isinstance(folder, str) or not isinstance(chunk, int) or not isinstance(task, int):
        return None
    array = _job_id_in(files, sweep_job_id_marker(folder, chunk))
    return f"{array}_{task}" if array is not None and array.isdigit() else None


def looks_like_run_dir(path: str) -> bool:
    """Shaped like a folder nsml-hpc made: ``<project>/<N>`` or a temp build ``.N.tmp-...``."""
    name = posixpath.basename(path.rstrip("/"))
    return name.isdigit() or (name.startswith(".") and TEMP_MARK in name)


def remove_run_dir(files: RunFiles, path: str) -> bool:
    """Delete a run directory, refusing anything that is not shaped like one (or a link)."""
    if not looks_like_run_dir(path):
        return False
    files.remove_tree(path, inside=posixpath.dirname(path.rstrip("/")))
    return True
