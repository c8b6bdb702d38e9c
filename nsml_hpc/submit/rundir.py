"""The run directory on the cluster (the only contract between a job and the front end):
where it lives, its small documents, and the one guarded way to delete one. Its names are in
:mod:`nsml_hpc.job.layout`. Paths are POSIX strings on the cluster and every access goes
through the backend's :class:`~nsml_hpc.backends.files.RunFiles`.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

from nsml_hpc.backends.files import RunFiles
from nsml_hpc.config.cluster_profiles import DEFAULT_REMOTE_RUN_ROOT, ClusterProfile
from nsml_hpc.job.layout import JOB_ID_MARKER, PRIVATE_DIR, TEMP_MARK
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


def write_job_id_marker(files: RunFiles, run_dir: str, job_id: str) -> None:
    files.write_bytes(posixpath.join(run_dir, PRIVATE_DIR, JOB_ID_MARKER), f"{job_id}\n".encode())


def read_job_id_marker(files: RunFiles, run_dir: str) -> str | None:
    raw = files.read_from(posixpath.join(run_dir, PRIVATE_DIR, JOB_ID_MARKER), 0, 64)
    text = raw.decode("ascii", "replace").strip()
    return text if text.isdigit() else None


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
