"""The run directory (the only contract between a job and the front end): its layout, and the
one guarded way to delete one.

    <run_root>/<user>/<project>/<N>/
      session.json  job.sbatch  code/  slurm-<jobid>.out  metrics.jsonl  events.jsonl
      .nsml/job_id        written right after sbatch answered (lets sync adopt a crashed submit)
      .nsml/python/       put on the job's PYTHONPATH: holds a link to the nsml_hpc package
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

SESSION_FILE = "session.json"
SCRIPT_FILE = "job.sbatch"
CODE_DIR = "code"
PRIVATE_DIR = ".nsml"
JOB_ID_MARKER = "job_id"
API_PATH_DIR = "python"


def project_dir(run_root: Path, user: str, project: str) -> Path:
    return run_root / user / project


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``path`` so that readers see the old file or the whole new one, never a part."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(handle, 0o666 & ~_umask())  # mkstemp makes 0600; keep the usual mode
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, sort_keys=True, ensure_ascii=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_job_id_marker(run_dir: Path, job_id: str) -> None:
    marker = run_dir / PRIVATE_DIR / JOB_ID_MARKER
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(job_id + "\n", encoding="ascii")


def read_job_id_marker(run_dir: Path) -> str | None:
    try:
        text = (run_dir / PRIVATE_DIR / JOB_ID_MARKER).read_text("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if text.isdigit() else None


def is_run_dir(path: Path) -> bool:
    """A folder nsml-hpc made: ``<project>/<N>`` holding session.json (or a temp build of one)."""
    name = path.name
    looks_numbered = name.isdigit() or (name.startswith(".") and ".tmp-" in name)
    return looks_numbered and path.is_dir() and not path.is_symlink()


def remove_run_dir(path: Path) -> bool:
    """Delete a run directory, refusing anything that is not shaped like one."""
    if not is_run_dir(path):
        return False
    shutil.rmtree(path)
    return True
