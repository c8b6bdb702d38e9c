"""Create a session: validate, reserve its number, build its run directory on the cluster,
sbatch, record.

All or nothing: the run directory is built under a temporary name (``.N.tmp-...``) through the
backend's file access (local, SFTP or ssh) and renamed into place only when complete, so a
dropped connection never leaves a half snapshot that looks like a run directory. If anything
fails before the catalog says SUBMITTED, the reserved row and the run directory are removed
again, and a job that was already accepted is cancelled. A session is recorded as submitted
only after sbatch returned a job id.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nsml_hpc import __version__
from nsml_hpc.backends.base import SlurmBackend
from nsml_hpc.backends.files import RunFiles
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.sessions import (
    discard_session,
    list_sessions,
    mark_submitted,
    next_number,
    reserve_session,
    session_name,
)
from nsml_hpc.code.selection import CodeManifest, collect_code
from nsml_hpc.code.upload import (
    LocalFile,
    Progress,
    Seed,
    UploadStats,
    local_files,
    manifest_document,
    parse_manifest,
)
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.config.identity import current_user
from nsml_hpc.config.settings import Settings
from nsml_hpc.errors import NsmlError, SpecError
from nsml_hpc.job.layout import (
    API_PATH_DIR,
    CODE_DIR,
    CODE_MANIFEST,
    PRIVATE_DIR,
    SCRIPT_FILE,
    SESSION_FILE,
    TEMP_MARK,
)
from nsml_hpc.job.permissions import MODE_KEY
from nsml_hpc.job.sbatch_options import option_name
from nsml_hpc.job.spec import EnvStep, Resources, SessionSpec, validate_spec
from nsml_hpc.submit.injob_copy import in_job_files
from nsml_hpc.submit.render import ScriptContext, render_script
from nsml_hpc.submit.rundir import (
    json_bytes,
    project_dir,
    read_json,
    remove_run_dir,
    run_root_for,
    write_job_id_marker,
)

STALE_TEMP_SECONDS = 3600.0  # a temp build this old was left by a dropped connection
SEED_CANDIDATES = 3


@dataclass(frozen=True)
class Submitted:
    name: str
    job_id: str
    run_dir: Path  # the path on the cluster (on this machine only for local backends)
    script: str
    cluster: str = "local"
    upload: UploadStats | None = None


@dataclass(frozen=True)
class Prepared:
    """A checked spec (with its cluster's defaults) and its code listing: nothing exists on
    disk, on the cluster or in the catalog yet."""

    spec: SessionSpec
    code: CodeManifest
    profile: ClusterProfile
    user: str  # who submits, on this machine (the cluster account comes from the backend)
    extra: dict[str, Any] = field(default_factory=dict)  # more session.json keys (a fork's)


def code_root_for(script: Path, cwd: Path) -> Path:
    """The folder to snapshot: the working directory if it holds the script, else its folder."""
    script = script.resolve()
    cwd = cwd.resolve()
    return cwd if cwd in script.parents else script.parent


def apply_profile_defaults(spec: SessionSpec, profile: ClusterProfile) -> SessionSpec:
    """Partition, account, QOS, reservation, mail settings, ``--exclusive``, CPUs per task
    and the GPU type the command line left open, the profile's sbatch options before the
    command line's (one the command line sets again replaces the profile's), and setup lines
    first. CPUs per task only when the session names neither --cpus-per-task nor
    --cpus-per-gpu (Slurm takes one); the GPU type only for a session that asks for GPUs."""
    defaults = profile.defaults
    res = spec.resources
    own = {option_name(text) for text in res.sbatch_args}
    cpus_open = res.cpus_per_task is None and res.cpus_per_gpu is None
    resources: Resources = replace(
        res,
        partition=res.partition if res.partition is not None else defaults.partition,
        account=res.account if res.account is not None else defaults.account,
        qos=res.qos if res.qos is not None else defaults.qos,
        reservation=res.reservation if res.reservation is not None else defaults.reservation,
        mail_type=res.mail_type if res.mail_type is not None else defaults.mail_type,
        mail_user=res.mail_user if res.mail_user is not None else defaults.mail_user,
        exclusive=res.exclusive if res.exclusive is not None else defaults.exclusive,
        cpus_per_task=defaults.cpus_per_task if cpus_open else res.cpus_per_task,
        gpu_type=defaults.gpu_type if res.gpus and res.gpu_type is None else res.gpu_type,
        sbatch_args=[
            *(text for text in defaults.sbatch_args if option_name(text) not in own),
            *res.sbatch_args,
        ],
    )
    setup = [EnvStep("setup", line) for line in defaults.setup]
    return replace(spec, resources=resources, environment=[*setup, *spec.environment])


def prepare(spec: SessionSpec, settings: Settings, code_root: Path) -> Prepared:
    """Every check that can fail before anything is created (nothing connects yet)."""
    profile = settings.profile(spec.cluster)
    spec = validate_spec(apply_profile_defaults(spec, profile))
    script = (code_root / spec.script).resolve()
    if not script.is_file():
        raise SpecError(f"script not found: {code_root / spec.script}")
    if script.suffix != ".py" and not os.access(script, os.X_OK):
        raise SpecError(f"{spec.script} is neither a .py file nor executable")
    # Keep run directories out of a snapshot of the user's folder, unless the code itself
    # lives in one (a fork copies its parent's code/ folder).
    roots = [settings.run_root.resolve()]
    if profile.run_root and not profile.remote:
        roots.append(Path(profile.run_root).expanduser().resolve())
    here = code_root.resolve()
    exclude = [root for root in roots if root != here and root not in here.parents]
    code = collect_code(code_root, settings.max_code_bytes, exclude=exclude)
    if spec.script not in {item.relative for item in code.files}:
        raise SpecError(
            f"{spec.script} is excluded from the code snapshot (.gitignore/.nsmlignore)"
        )
    return Prepared(
        spec=spec,
        code=code,
        profile=profile,
        user=current_user(),
        extra={
            **settings.metric_directions.to_document(),  # what load("best:M") follows in-job
            **run_dir_mode_document(settings),
        },
    )


def run_dir_mode_document(settings: Settings) -> dict[str, str]:
    """session.json's ``run_dir_mode`` (nsml_hpc.job.permissions), when the user chose one."""
    return {MODE_KEY: settings.run_dir_mode} if settings.run_dir_mode else {}


def training_interpreter(spec: SessionSpec, profile: ClusterProfile | None = None) -> str:
    """With an environment step the job's own ``python3`` runs the script, else the cluster's
    configured interpreter (remote) or ours (local)."""
    if spec.environment:
        return "python3"
    return (profile.python if profile else None) or sys.executable


def _context(name: str, run_dir: str, profile: ClusterProfile) -> ScriptContext:
    return ScriptContext(
        session_name=name,
        run_dir=run_dir,
        wrapper_python=profile.python or sys.executable,
        api_path=posixpath.join(run_dir, PRIVATE_DIR, API_PATH_DIR),
    )


def project_base(prepared: Prepared, settings: Settings, backend: SlurmBackend) -> str:
    """``<run root>/<cluster user>/<project>`` on the session's cluster."""
    run_root = run_root_for(prepared.profile, settings.run_root, backend.files)
    return project_dir(run_root, backend.user, prepared.spec.project)


def dry_run(prepared: Prepared, catalog: Catalog, settings: Settings, backend: SlurmBackend) -> str:
    """The exact script a submit would render now (the number is the next free one)."""
    files = backend.files
    base = project_base(prepared, settings, backend)
    number = next_number(catalog, prepared.spec.project)
    while files.exists(f"{base}/{number}"):
        number += 1
    name = session_name(prepared.spec.project, number)
    return render_script(prepared.spec, _context(name, f"{base}/{number}", prepared.profile))


def session_document(
    prepared: Prepared, name: str, number: int, user: str, now: float
) -> dict[str, object]:
    spec = prepared.spec
    return {
        "name": name,
        "project": spec.project,
        "number": number,
        "user": user,
        "submitted_by": prepared.user,
        "cluster": spec.cluster,
        "created_at": now,
        "nsml_hpc_version": __version__,
        "spec": spec.to_dict(),
        "hyperparameters": spec.hyperparameters,
        "interpreter": training_interpreter(spec, prepared.profile),
        "code": {
            "root": str(prepared.code.root),
            "files": len(prepared.code.files),
            "bytes": prepared.code.total_bytes,
            "git_commit": prepared.code.git_commit,
            "git_dirty": prepared.code.git_dirty,
        },
        **prepared.extra,
    }


def _seed(catalog: Catalog, files: RunFiles, spec: SessionSpec) -> Seed | None:
    """The newest earlier snapshot of the project on this cluster that still has its manifest."""
    for record in list_sessions(
        catalog, project=spec.project, cluster=spec.cluster, limit=SEED_CANDIDATES
    ):
        manifest = parse_manifest(
            read_json(files, posixpath.join(record.run_dir, PRIVATE_DIR, CODE_MANIFEST))
        )
        if manifest:
            return Seed(posixpath.join(record.run_dir, CODE_DIR), manifest)
    return None


def _clean_stale_temps(files: RunFiles, base: str, now: float) -> None:
    """Remove temp builds that dropped connections left behind (never a recent one, which
    may belong to a submit running right now)."""
    for entry in files.list_dir(base) or []:
        if (
            entry.is_dir
            and entry.name.startswith(".")
            and TEMP_MARK in entry.name
            and now - entry.mtime_ns / 1e9 > STALE_TEMP_SECONDS
        ):
            try:
                remove_run_dir(files, posixpath.join(base, entry.name))
            except NsmlError:
                continue


def in_job_payload() -> dict[str, bytes]:
    """The in-job package as files under a run (or sweep) directory's ``.nsml/python``."""
    return {
        posixpath.join(PRIVATE_DIR, API_PATH_DIR, relative): data
        for relative, data in in_job_files().items()
    }


def build_run_dir(
    prepared: Prepared,
    files: RunFiles,
    name: str,
    number: int,
    final: str,
    user: str,
    now: float,
    *,
    seed: Seed | None = None,
    progress: Progress | None = None,
    script: str | None = None,
    extra: dict[str, object] | None = None,
    extra_files: dict[str, str] | None = None,
    code_files: Sequence[LocalFile] | None = None,
    in_job_copy: bool = True,
) -> tuple[str, UploadStats]:
    """Write the run directory through the cluster's ``files`` under a temporary name, then
    rename it into place (works the same on a local and a remote cluster).

    ``script`` is the sbatch text to record (a sweep's array script); by default the
    session's own script is rendered. ``extra`` goes into session.json, ``extra_files``
    (name -> text) beside it. ``seed`` (an earlier snapshot on the cluster) lets an upload
    send only what changed; ``progress(sent, total)`` follows the bytes. A sweep passes the
    code's ``code_files`` (hashed once for all its sessions) and ``in_job_copy=False`` (its
    array script puts the sweep's one copy of the in-job package on ``PYTHONPATH``).
    """
    parent = posixpath.dirname(final)
    temp = posixpath.join(parent, f".{number}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(3)}")
    try:
        files.make_dirs(temp)
        stats = files.upload_tree(
            prepared.code.root,
            code_files
            if code_files is not None
            else local_files(prepared.code.root, prepared.code.files),
            posixpath.join(temp, CODE_DIR),
            seed=seed,
            progress=progress,
        )
        if script is None:
            script = render_script(prepared.spec, _context(name, final, prepared.profile))
        payload = in_job_payload() if in_job_copy else {}
        payload[posixpath.join(PRIVATE_DIR, CODE_MANIFEST)] = json_bytes(
            manifest_document(stats.manifest)
        )
        document = {**session_document(prepared, name, number, user, now), **(extra or {})}
        payload[SESSION_FILE] = json_bytes(document)
        for file_name, text in (extra_files or {}).items():
            payload[file_name] = text.encode("utf-8")
        payload[SCRIPT_FILE] = script.encode("utf-8")
        files.write_files(temp, payload)
        files.rename(temp, final)  # fails if the folder appeared meanwhile: nothing is replaced
    except BaseException as exc:
        try:
            remove_run_dir(files, temp)
        except NsmlError as cleanup:
            exc.add_note(f"the partial upload {temp} could not be removed: {cleanup}")
        raise
    return script, stats


def submit(
    prepared: Prepared,
    catalog: Catalog,
    settings: Settings,
    backend: SlurmBackend,
    *,
    now: float | None = None,
    progress: Progress | None = None,
    before_sbatch: Callable[[int], None] | None = None,
) -> Submitted:
    """Reserve, write the run directory, (call ``before_sbatch`` with the new session's id:
    a fork records its lineage there), sbatch, mark submitted; undo everything on failure."""
    now = time.time() if now is None else now
    spec = prepared.spec
    files = backend.files
    user = backend.user
    base = project_base(prepared, settings, backend)
    files.make_dirs(base)
    _clean_stale_temps(files, base, now)
    seed = _seed(catalog, files, spec) if prepared.profile.remote else None
    record = reserve_session(
        catalog,
        spec=spec,
        user=user,
        run_dir_for=lambda number: f"{base}/{number}",
        is_free=lambda number: not files.exists(f"{base}/{number}"),
        now=now,
    )
    assert record.id is not None
    run_dir = record.run_dir
    job_id: str | None = None
    try:
        script, stats = build_run_dir(
            prepared,
            files,
            record.name,
            record.number,
            run_dir,
            user,
            now,
            seed=seed,
            progress=progress,
        )
        if before_sbatch is not None:
            before_sbatch(record.id)
        job_id = backend.submit(posixpath.join(run_dir, SCRIPT_FILE))
        with contextlib.suppress(NsmlError):  # only a crash right here would need the marker
            write_job_id_marker(files, run_dir, job_id)
        mark_submitted(catalog, record.id, job_id=job_id, cluster=spec.cluster, now=now)
    except BaseException as exc:
        _undo(catalog, backend, record.id, run_dir, job_id, exc)
        raise
    return Submitted(
        name=record.name,
        job_id=job_id,
        run_dir=Path(run_dir),
        script=script,
        cluster=spec.cluster,
        upload=stats,
    )


def _undo(
    catalog: Catalog,
    backend: SlurmBackend,
    session_id: int,
    run_dir: str,
    job_id: str | None,
    cause: BaseException,
) -> None:
    if job_id is not None:
        try:
            backend.cancel([job_id])
        except NsmlError as exc:
            cause.add_note(f"job {job_id} could not be cancelled: {exc}")
    discard_session(catalog, session_id)
    try:
        remove_run_dir(backend.files, run_dir)
    except NsmlError as exc:
        cause.add_note(f"{run_dir} could not be removed: {exc}")
