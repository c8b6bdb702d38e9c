"""Submit a sweep: one session per configuration, all of them backed by ONE job array per
MaxArraySize-sized chunk (one sbatch call each), all or nothing like a single submit.

    <run_root>/<user>/<project>/sweep-<first N>/   sweep.json (the parameter table),
                                                  array-<k>.sbatch, early Slurm output
    <run_root>/<user>/<project>/<N>/               one run directory per session, with
                                                  session.json["sweep"] (name, folder, index,
                                                  its parameters)
"""

from __future__ import annotations

import contextlib
import posixpath
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from nsml_hpc.backends.base import SlurmBackend
from nsml_hpc.backends.files import RunFiles
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.catalog.sessions import discard_session, mark_all_submitted, reserve_sessions
from nsml_hpc.code.upload import local_files
from nsml_hpc.config.settings import Settings
from nsml_hpc.errors import NsmlError
from nsml_hpc.job.layout import API_PATH_DIR, PRIVATE_DIR, SWEEP_FILE
from nsml_hpc.slurm.arrays import array_spec, split_counts
from nsml_hpc.submit.create import Prepared, build_run_dir, in_job_payload, project_base
from nsml_hpc.submit.render import ArrayContext, render_array_script
from nsml_hpc.submit.rundir import json_bytes, remove_run_dir, write_job_id_marker
from nsml_hpc.sweeps.grid import apply_to_args

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True)
class SubmittedSweep:
    name: str
    sessions: list[str]
    array_ids: list[str]
    sweep_dir: Path


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


def _table(
    records: list[SessionRecord], configurations: list[dict[str, str]]
) -> list[dict[str, object]]:
    return [
        {"index": index, "session": record.name, "parameters": configuration}
        for index, (record, configuration) in enumerate(zip(records, configurations, strict=True))
    ]


def remove_sweep_dir(files: RunFiles, path: str) -> None:
    """Delete a sweep directory, refusing anything not named like one (or a link)."""
    if posixpath.basename(path.rstrip("/")).startswith("sweep-"):
        files.remove_tree(path, inside=posixpath.dirname(path.rstrip("/")))


def submit_sweep(
    prepared: Prepared,
    configurations: list[dict[str, str]],
    catalog: Catalog,
    settings: Settings,
    backend: SlurmBackend,
    *,
    max_parallel: int | None = None,
    progress: Progress = _no_progress,
    now: float | None = None,
) -> SubmittedSweep:
    now = time.time() if now is None else now
    spec = prepared.spec
    chunk_sizes = split_counts(len(configurations), backend.max_array_size())
    files = backend.files
    user = backend.user
    base = project_base(prepared, settings, backend)
    files.make_dirs(base)
    records: list[SessionRecord] = []
    array_ids: list[str] = []
    sweep_dir: str | None = None
    try:
        member_specs = [replace(spec, args=apply_to_args(spec.args, c)) for c in configurations]
        records.extend(
            reserve_sessions(
                catalog,
                specs=member_specs,
                user=user,
                run_dir_for=lambda number: f"{base}/{number}",
                is_free=lambda number: not files.exists(f"{base}/{number}"),
                now=now,
            )
        )
        sweep_name = f"{spec.project}/sweep-{records[0].number}"
        if files.exists(f"{base}/sweep-{records[0].number}"):
            raise NsmlError(f"{base}/sweep-{records[0].number} already exists; submit again")
        sweep_dir = f"{base}/sweep-{records[0].number}"
        files.make_dirs(sweep_dir)
        table = {"name": sweep_name, "sessions": _table(records, configurations)}
        files.write_bytes(posixpath.join(sweep_dir, SWEEP_FILE), json_bytes(table))
        files.write_files(sweep_dir, in_job_payload())  # one copy for every task of the sweep
        code_files = local_files(prepared.code.root, prepared.code.files)  # hashed once
        start = 0
        for chunk, size in enumerate(chunk_sizes):
            members = records[start : start + size]
            context = ArrayContext(
                sweep_name=sweep_name,
                sweep_dir=sweep_dir,
                run_dirs=[record.run_dir for record in members],
                session_names=[record.name for record in members],
                wrapper_python=prepared.profile.python or sys.executable,
                array=array_spec(size, max_parallel),
                api_path=posixpath.join(sweep_dir, PRIVATE_DIR, API_PATH_DIR),
            )
            script = render_array_script(spec, context)
            with files.batch():  # one flush for the chunk's run directories, before sbatch
                for index, record in enumerate(members, start):
                    build_run_dir(
                        replace(prepared, spec=member_specs[index]),
                        files,
                        record.name,
                        record.number,
                        record.run_dir,
                        user,
                        now,
                        script=script,
                        extra={
                            "sweep": {
                                "name": sweep_name,
                                "dir": sweep_dir,
                                "index": index,
                                "array_chunk": chunk,
                                "parameters": configurations[index],
                            }
                        },
                        code_files=code_files,
                        in_job_copy=False,
                    )
                    progress("preparing", index + 1, len(records))
                script_path = posixpath.join(sweep_dir, f"array-{chunk}.sbatch")
                files.write_bytes(script_path, script.encode("utf-8"))
            array_id = backend.submit(script_path)
            array_ids.append(array_id)
            job_ids = {record.id: f"{array_id}_{task}" for task, record in enumerate(members)}
            with files.batch():
                for record in members:
                    with contextlib.suppress(NsmlError):  # only a crash here would need it
                        write_job_id_marker(files, record.run_dir, job_ids[record.id])
            mark_all_submitted(
                catalog,
                {session_id: job_id for session_id, job_id in job_ids.items() if session_id},
                cluster=spec.cluster,
                now=now,
            )
            progress("submitting", chunk + 1, len(chunk_sizes))
            start += size
    except BaseException as exc:
        _undo(catalog, backend, records, array_ids, sweep_dir, exc)
        raise
    return SubmittedSweep(
        name=sweep_name,
        sessions=[record.name for record in records],
        array_ids=array_ids,
        sweep_dir=Path(sweep_dir),
    )


def dry_run_sweep(
    prepared: Prepared,
    configurations: list[dict[str, str]],
    catalog: Catalog,
    settings: Settings,
    backend: SlurmBackend,
    *,
    max_parallel: int | None = None,
) -> str:
    """The array script(s) ``sweep`` would submit now (the numbers are the next free ones);
    nothing is written, reserved or submitted. Several scripts (a sweep larger than the
    cluster's MaxArraySize) are separated by a comment line naming each."""
    from nsml_hpc.catalog.sessions import next_number, session_name

    spec = prepared.spec
    files = backend.files
    base = project_base(prepared, settings, backend)
    number = next_number(catalog, spec.project)
    numbers: list[int] = []
    while len(numbers) < len(configurations):
        if not files.exists(f"{base}/{number}"):
            numbers.append(number)
        number += 1
    sweep_name = f"{spec.project}/sweep-{numbers[0]}"
    sweep_dir = f"{base}/sweep-{numbers[0]}"
    chunk_sizes = split_counts(len(configurations), backend.max_array_size())
    scripts: list[str] = []
    start = 0
    for chunk, size in enumerate(chunk_sizes):
        members = numbers[start : start + size]
        context = ArrayContext(
            sweep_name=sweep_name,
            sweep_dir=sweep_dir,
            run_dirs=[f"{base}/{n}" for n in members],
            session_names=[session_name(spec.project, n) for n in members],
            wrapper_python=prepared.profile.python or sys.executable,
            array=array_spec(size, max_parallel),
            api_path=posixpath.join(sweep_dir, PRIVATE_DIR, API_PATH_DIR),
        )
        script = render_array_script(spec, context)
        if len(chunk_sizes) > 1:
            script = f"# ---- {sweep_dir}/array-{chunk}.sbatch ----\n{script}"
        scripts.append(script)
        start += size
    return "".join(scripts)


def _undo(
    catalog: Catalog,
    backend: SlurmBackend,
    records: list[SessionRecord],
    array_ids: list[str],
    sweep_dir: str | None,
    cause: BaseException,
) -> None:
    files = backend.files
    if array_ids:
        try:
            backend.cancel(array_ids)
        except NsmlError as exc:
            cause.add_note(f"arrays {', '.join(array_ids)} could not be cancelled: {exc}")
    for record in records:
        if record.id is not None:
            discard_session(catalog, record.id)
        try:
            remove_run_dir(files, record.run_dir)
        except NsmlError as exc:
            cause.add_note(f"{record.run_dir} could not be removed: {exc}")
    if sweep_dir is not None:
        try:
            remove_sweep_dir(files, sweep_dir)
        except NsmlError as exc:
            cause.add_note(f"{sweep_dir} could not be removed: {exc}")
