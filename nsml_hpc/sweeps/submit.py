"""Submit a sweep: one session per configuration, all of them backed by ONE job array per
MaxArraySize-sized chunk (one sbatch call each), all or nothing like a single submit.

    <run_root>/<user>/<project>/sweep-<first N>/   sweep.json (the parameter table),
                                                  array-<k>.sbatch, early Slurm output,
                                                  .nsml/python (the in-job modules, once),
                                                  .nsml/code.json (the code manifest),
                                                  .nsml/array-<k>.job_id (after sbatch)
    <run_root>/<user>/<project>/<N>/               one run directory per session: its own
                                                  code/ snapshot and session.json["sweep"]
                                                  (name, folder, index, array chunk and task,
                                                  its parameters); job.sbatch and
                                                  .nsml/code.json hard links to the sweep's

The thousand sessions of a sweep cost one INSERT, one listing of the project folder, a few
system calls per run directory (its folder, its code, session.json, two links, the rename),
one flush per array, one sbatch per array and one marker per array: what differs per session
is written per session, what is the same is written once.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from nsml_hpc.backends.base import SlurmBackend
from nsml_hpc.backends.files import RunFiles
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.sessions import (
    Reserved,
    discard_sessions,
    mark_all_submitted,
    reserve_sessions,
)
from nsml_hpc.code.upload import (
    LocalFile,
    UploadPlan,
    local_files,
    manifest_after,
    manifest_document,
)
from nsml_hpc.config.settings import Settings
from nsml_hpc.errors import NsmlError
from nsml_hpc.job.layout import (
    API_PATH_DIR,
    CODE_DIR,
    CODE_MANIFEST,
    PRIVATE_DIR,
    SCRIPT_FILE,
    SESSION_FILE,
    SWEEP_FILE,
    TEMP_MARK,
)
from nsml_hpc.slurm.arrays import array_spec, split_counts
from nsml_hpc.submit.create import Prepared, in_job_payload, project_base, session_document
from nsml_hpc.submit.render import ArrayContext, render_array_script
from nsml_hpc.submit.rundir import json_bytes, remove_run_dir, sweep_job_id_marker
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
    records: list[Reserved], configurations: list[dict[str, str]]
) -> list[dict[str, object]]:
    return [
        {"index": index, "session": record.name, "parameters": configuration}
        for index, (record, configuration) in enumerate(zip(records, configurations, strict=True))
    ]


def remove_sweep_dir(files: RunFiles, path: str) -> None:
    """Delete a sweep directory, refusing anything not named like one (or a link)."""
    if posixpath.basename(path.rstrip("/")).startswith("sweep-"):
        files.remove_tree(path, inside=posixpath.dirname(path.rstrip("/")))


def _free_numbers(files: RunFiles, base: str) -> Callable[[int], bool]:
    """Whether run directory ``<base>/<N>`` is free, from ONE listing of the project folder
    (not one lookup per session: a remote cluster would pay a round trip for each). A folder
    that appears after the listing makes the rename into place fail: nothing is replaced."""
    taken = {entry.name for entry in files.list_dir(base) or []}
    return lambda number: str(number) not in taken


def _build_member(
    files: RunFiles,
    prepared: Prepared,
    code_files: list[LocalFile],
    member: Reserved,
    document: bytes,
    links: dict[str, str],
) -> None:
    """One session's run directory, built under a temporary name and renamed into place:
    its own code snapshot and session.json; the array script and the code manifest (the same
    for every session of the sweep, never changed after submit) linked from the sweep
    directory."""
    parent = posixpath.dirname(member.run_dir)
    temp = posixpath.join(
        parent, f".{member.number}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(3)}"
    )
    try:
        files.make_dirs(temp)
        files.upload_tree(prepared.code.root, code_files, posixpath.join(temp, CODE_DIR))
        files.write_files(temp, {SESSION_FILE: document})
        files.link_files(temp, links)
        files.rename(temp, member.run_dir)  # fails if the folder appeared: nothing replaced
    except BaseException as exc:
        try:
            remove_run_dir(files, temp)
        except NsmlError as cleanup:
            exc.add_note(f"the partial run directory {temp} could not be removed: {cleanup}")
        raise


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
    """Reserve every session (one INSERT), write the sweep directory and each session's run
    directory (one flush per array), sbatch each array, record its id once in the sweep
    directory, mark every session submitted (three statements); undo everything on failure.
    """
    now = time.time() if now is None else now
    spec = prepared.spec
    chunk_sizes = split_counts(len(configurations), backend.max_array_size())
    files = backend.files
    user = backend.user
    base = project_base(prepared, settings, backend)
    files.make_dirs(base)
    records: list[Reserved] = []
    array_ids: list[str] = []
    sweep_dir: str | None = None
    try:
        base_spec = spec.to_dict()
        member_specs = [replace(spec, args=apply_to_args(spec.args, c)) for c in configurations]
        spec_dicts = [{**base_spec, "args": list(member.args)} for member in member_specs]
        records.extend(
            reserve_sessions(
                catalog,
                specs=member_specs,
                user=user,
                run_dir_for=lambda number: f"{base}/{number}",
                is_free=_free_numbers(files, base),
                now=now,
                spec_jsons=[json.dumps(d, sort_keys=True) for d in spec_dicts],
            )
        )
        sweep_name = f"{spec.project}/sweep-{records[0].number}"
        if files.exists(f"{base}/sweep-{records[0].number}"):
            raise NsmlError(f"{base}/sweep-{records[0].number} already exists; submit again")
        sweep_dir = f"{base}/sweep-{records[0].number}"
        files.make_dirs(sweep_dir)
        table = {"name": sweep_name, "sessions": _table(records, configurations)}
        files.write_bytes(posixpath.join(sweep_dir, SWEEP_FILE), json_bytes(table))
        code_files = local_files(prepared.code.root, prepared.code.files)  # hashed once
        manifest = manifest_after(UploadPlan(send=list(code_files)), {})  # each member's
        shared = {
            **in_job_payload(),  # one copy for every task of the sweep
            posixpath.join(PRIVATE_DIR, CODE_MANIFEST): json_bytes(manifest_document(manifest)),
        }
        files.write_files(sweep_dir, shared)
        manifest_path = posixpath.join(sweep_dir, PRIVATE_DIR, CODE_MANIFEST)
        common = session_document(prepared, "", 0, user, now)  # what every member shares
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
            script_path = posixpath.join(sweep_dir, f"array-{chunk}.sbatch")
            links = {
                SCRIPT_FILE: script_path,
                posixpath.join(PRIVATE_DIR, CODE_MANIFEST): manifest_path,
            }
            with files.batch():  # one flush for the chunk's run directories, before sbatch
                files.write_bytes(script_path, script.encode("utf-8"))
                for task, record in enumerate(members):
                    index = start + task
                    document = {
                        **common,
                        "name": record.name,
                        "number": record.number,
                        "spec": spec_dicts[index],
                        "hyperparameters": member_specs[index].hyperparameters,
                        "sweep": {
                            "name": sweep_name,
                            "dir": sweep_dir,
                            "index": index,
                            "array_chunk": chunk,
                            "array_task": task,
                            "parameters": configurations[index],
                        },
                    }
                    _build_member(files, prepared, code_files, record, json_bytes(document), links)
                    progress("preparing", index + 1, len(records))
            array_id = backend.submit(script_path)
            array_ids.append(array_id)
            with contextlib.suppress(NsmlError):  # only a crash right here would need it
                files.write_bytes(sweep_job_id_marker(sweep_dir, chunk), f"{array_id}\n".encode())
            mark_all_submitted(
                catalog,
                {record.id: f"{array_id}_{task}" for task, record in enumerate(members)},
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
    records: list[Reserved],
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
    discard_sessions(catalog, [record.id for record in records])
    for record in records:
        try:
            remove_run_dir(files, record.run_dir)
        except NsmlError as exc:
            cause.add_note(f"{record.run_dir} could not be removed: {exc}")
    if sweep_dir is not None:
        try:
            remove_sweep_dir(files, sweep_dir)
        except NsmlError as exc:
            cause.add_note(f"{sweep_dir} could not be removed: {exc}")
