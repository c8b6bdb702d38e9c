"""Create a session: validate, reserve its number, write its run directory, sbatch, record.

All or nothing: if anything fails before the catalog says SUBMITTED, the reserved row and the
run directory are removed again, and a job that was already accepted is cancelled.
"""

from __future__ import annotations

import getpass
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nsml_hpc
from nsml_hpc import __version__
from nsml_hpc.backends.base import SlurmBackend
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.sessions import (
    discard_session,
    list_sessions,
    mark_submitted,
    reserve_session,
    session_name,
)
from nsml_hpc.codesnap import CodeManifest, collect_code, copy_code
from nsml_hpc.errors import NsmlError, SpecError
from nsml_hpc.render import ScriptContext, check_cluster_path, render_script
from nsml_hpc.rundir import (
    API_PATH_DIR,
    CODE_DIR,
    PRIVATE_DIR,
    SCRIPT_FILE,
    SESSION_FILE,
    project_dir,
    remove_run_dir,
    write_job_id_marker,
    write_json_atomic,
)
from nsml_hpc.settings import Settings
from nsml_hpc.spec import SessionSpec, validate_spec


@dataclass(frozen=True)
class Submitted:
    name: str
    job_id: str
    run_dir: Path
    script: str


@dataclass(frozen=True)
class Prepared:
    """A checked spec with its code listing: nothing exists on disk or in the catalog yet."""

    spec: SessionSpec
    code: CodeManifest
    user: str
    extra: dict[str, Any] = field(default_factory=dict)  # more session.json keys (a fork's)


def current_user() -> str:
    return getpass.getuser()


def code_root_for(script: Path, cwd: Path) -> Path:
    """The folder to snapshot: the working directory if it holds the script, else its folder."""
    script = script.resolve()
    cwd = cwd.resolve()
    return cwd if cwd in script.parents else script.parent


def prepare(spec: SessionSpec, settings: Settings, code_root: Path) -> Prepared:
    """Every check that can fail before anything is created."""
    validate_spec(spec)
    check_cluster_path("run_root", str(settings.run_root.resolve()))
    script = (code_root / spec.script).resolve()
    if not script.is_file():
        raise SpecError(f"script not found: {code_root / spec.script}")
    if script.suffix != ".py" and not os.access(script, os.X_OK):
        raise SpecError(f"{spec.script} is neither a .py file nor executable")
    run_root = settings.run_root.resolve()
    # Keep run directories out of a snapshot of the user's folder, unless the code itself
    # lives in one (a fork copies its parent's code/ folder).
    inside_run_root = run_root == code_root.resolve() or run_root in code_root.resolve().parents
    code = collect_code(
        code_root, settings.max_code_bytes, exclude=[] if inside_run_root else [run_root]
    )
    if spec.script not in {item.relative for item in code.files}:
        raise SpecError(
            f"{spec.script} is excluded from the code snapshot (.gitignore/.nsmlignore)"
        )
    return Prepared(spec=spec, code=code, user=current_user())


def training_interpreter(spec: SessionSpec) -> str:
    """With an environment step the job's own ``python3`` runs the script, else ours does."""
    return "python3" if spec.environment else sys.executable


def _context(name: str, run_dir: Path) -> ScriptContext:
    return ScriptContext(
        session_name=name,
        run_dir=str(run_dir),
        wrapper_python=sys.executable,
        api_path=str(run_dir / PRIVATE_DIR / API_PATH_DIR),
    )


def dry_run(prepared: Prepared, catalog: Catalog, settings: Settings) -> str:
    """The exact script a submit would render now (the number is the next free one)."""
    numbers = [s.number for s in list_sessions(catalog, project=prepared.spec.project)]
    base = project_dir(settings.run_root.resolve(), prepared.user, prepared.spec.project)
    number = max(numbers, default=0) + 1
    while (base / str(number)).exists():
        number += 1
    name = session_name(prepared.spec.project, number)
    return render_script(prepared.spec, _context(name, base / str(number)))


def _session_document(prepared: Prepared, name: str, number: int, now: float) -> dict[str, object]:
    spec = prepared.spec
    return {
        "name": name,
        "project": spec.project,
        "number": number,
        "user": prepared.user,
        "cluster": spec.cluster,
        "created_at": now,
        "nsml_hpc_version": __version__,
        "spec": spec.to_dict(),
        "hyperparameters": spec.hyperparameters,
        "interpreter": training_interpreter(spec),
        "code": {
            "root": str(prepared.code.root),
            "files": len(prepared.code.files),
            "bytes": prepared.code.total_bytes,
            "git_commit": prepared.code.git_commit,
            "git_dirty": prepared.code.git_dirty,
        },
        **prepared.extra,
    }


def build_run_dir(
    prepared: Prepared,
    name: str,
    number: int,
    final: Path,
    now: float,
    *,
    script: str | None = None,
    extra: dict[str, object] | None = None,
    extra_files: dict[str, str] | None = None,
) -> str:
    """Write the run directory under a temporary name, then rename it into place.

    ``script`` is the sbatch text to record (a sweep's array script); by default the
    session's own script is rendered. ``extra`` goes into session.json, ``extra_files``
    (name -> text) beside it.
    """
    temp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    remove_run_dir(temp)
    temp.mkdir(parents=True)
    try:
        copy_code(prepared.code, temp / CODE_DIR)
        api_dir = temp / PRIVATE_DIR / API_PATH_DIR
        api_dir.mkdir(parents=True)
        (api_dir / "nsml_hpc").symlink_to(Path(nsml_hpc.__file__).resolve().parent)
        document = {**_session_document(prepared, name, number, now), **(extra or {})}
        write_json_atomic(temp / SESSION_FILE, document)
        for file_name, text in (extra_files or {}).items():
            (temp / file_name).write_text(text, encoding="utf-8")
        if script is None:
            script = render_script(prepared.spec, _context(name, final))
        (temp / SCRIPT_FILE).write_text(script, encoding="utf-8")
        temp.rename(final)  # fails if the folder appeared meanwhile: nothing is overwritten
    except BaseException:
        remove_run_dir(temp)
        raise
    return script


def submit(
    prepared: Prepared,
    catalog: Catalog,
    settings: Settings,
    backend: SlurmBackend,
    *,
    now: float | None = None,
    before_sbatch: Callable[[int], None] | None = None,
) -> Submitted:
    """Reserve, write the run directory, (call ``before_sbatch`` with the new session's id:
    a fork records its lineage there), sbatch, mark submitted; undo everything on failure."""
    now = time.time() if now is None else now
    spec = prepared.spec
    base = project_dir(settings.run_root.resolve(), prepared.user, spec.project)
    base.mkdir(parents=True, exist_ok=True)
    record = reserve_session(
        catalog,
        spec=spec,
        user=prepared.user,
        run_dir_for=lambda number: str(base / str(number)),
        is_free=lambda number: not (base / str(number)).exists(),
        now=now,
    )
    assert record.id is not None
    run_dir = Path(record.run_dir)
    job_id: str | None = None
    try:
        script = build_run_dir(prepared, record.name, record.number, run_dir, now)
        if before_sbatch is not None:
            before_sbatch(record.id)
        job_id = backend.submit(run_dir / SCRIPT_FILE)
        write_job_id_marker(run_dir, job_id)
        mark_submitted(catalog, record.id, job_id=job_id, cluster=spec.cluster, now=now)
    except BaseException as exc:
        _undo(catalog, backend, record.id, run_dir, job_id, exc)
        raise
    return Submitted(name=record.name, job_id=job_id, run_dir=run_dir, script=script)


def _undo(
    catalog: Catalog,
    backend: SlurmBackend,
    session_id: int,
    run_dir: Path,
    job_id: str | None,
    cause: BaseException,
) -> None:
    if job_id is not None:
        try:
            backend.cancel([job_id])
        except NsmlError as exc:
            cause.add_note(f"job {job_id} could not be cancelled: {exc}")
    discard_session(catalog, session_id)
    if run_dir.exists():
        remove_run_dir(run_dir)
