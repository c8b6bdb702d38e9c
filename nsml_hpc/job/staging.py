"""Node-local copies of a session's dataset (``submit --dataset NAME --stage``), made by the
job wrapper before the training script starts and removed after it ends.

The copy goes to node-local scratch: ``$SLURM_TMPDIR`` (sites that set it), else ``$TMPDIR``,
else the system's temporary folder, as ``<scratch>/nsml-hpc-data-<job>/<name>-<version>/``.
On one node the wrapper copies the files itself; on several it sends each file with Slurm's
``sbcast`` (one read of the shared copy, broadcast to every node of the job) after one
``srun`` made the folders on every node, and one ``srun`` removes them again. Every copied
file is checked against the size in the dataset's manifest. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nsml_hpc.job.layout import DATASET_MANIFEST, SCRATCH_ENVS, STAGED_DIR_PREFIX

COMMAND_TIMEOUT = 3600.0


class StagingError(Exception):
    """The dataset could not be copied to node-local scratch (the message says why)."""


@dataclass(frozen=True)
class Staged:
    path: Path  # the node-local data folder the job reads
    root: Path  # what cleanup removes (on every node)
    files: int
    bytes: int
    seconds: float
    nodes: int
    method: str  # "copy" | "sbcast"


def scratch_root(environ: dict[str, str] | None = None) -> Path:
    """Node-local scratch: the first of $SLURM_TMPDIR, $TMPDIR that is a folder, else the
    system's temporary folder."""
    env = os.environ if environ is None else environ
    for name in SCRATCH_ENVS:
        value = env.get(name)
        if value and Path(value).is_dir():
            return Path(value)
    return Path(tempfile.gettempdir())


def expected_sizes(data_dir: Path) -> dict[str, int] | None:
    """Relative path -> size from the version's manifest (beside ``data/``); None if it
    cannot be read (the copy is then not checked file by file)."""
    try:
        document = json.loads((data_dir.parent / DATASET_MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, dict):
        return None
    sizes: dict[str, int] = {}
    for name, entry in files.items():
        if isinstance(entry, list) and entry and isinstance(entry[0], int):
            sizes[str(name)] = entry[0]
    return sizes


def _listing(source: Path) -> tuple[list[str], list[str]]:
    """(folders, files) under ``source``, relative, folders parents first."""
    folders: list[str] = []
    files: list[str] = []
    for directory, subdirs, names in os.walk(source):
        here = Path(directory).relative_to(source)
        subdirs.sort()
        for name in subdirs:
            folders.append((here / name).as_posix())
        for name in sorted(names):
            files.append((here / name).as_posix())
    return folders, files


def _check(target: Path, files: list[str], sizes: dict[str, int] | None) -> int:
    total = 0
    for relative in files:
        try:
            size = (target / relative).stat().st_size
        except OSError as exc:
            raise StagingError(f"{relative} is missing from the node-local copy: {exc}") from exc
        if sizes is not None and relative in sizes and sizes[relative] != size:
            raise StagingError(
                f"{relative} has {size} bytes in the node-local copy, the dataset {sizes[relative]}"
            )
        total += size
    if sizes is not None:
        missing = sorted(set(sizes) - set(files))
        if missing:
            raise StagingError(f"the dataset's {missing[0]} is missing from its shared copy")
    return total


def _run(argv: list[str]) -> None:
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StagingError(f"{argv[0]} failed: {exc}") from exc
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise StagingError(
            f"{Path(argv[0]).name} exited with {done.returncode}"
            + (f": {message[-1]}" if message else "")
        )


def _one_per_node(nodes: int, *command: str) -> list[str]:
    srun = shutil.which("srun") or "srun"
    return [srun, f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1", *command]


def stage(source: Path, label: str, job_id: str | None, nodes: int = 1) -> Staged:
    """Copy the dataset folder ``source`` to node-local scratch on every node of the job."""
    if not source.is_dir():
        raise StagingError(f"the dataset folder {source} is not there")
    started = time.monotonic()
    root = scratch_root() / f"{STAGED_DIR_PREFIX}{job_id or os.getpid()}"
    target = root / label
    folders, files = _listing(source)
    sizes = expected_sizes(source)
    if nodes > 1:
        sbcast = shutil.which("sbcast")
        if sbcast is None:
            raise StagingError("a job on several nodes stages with sbcast, which is not on PATH")
        made = [str(target), *(str(target / folder) for folder in folders)]
        _run(_one_per_node(nodes, "mkdir", "-p", "--", *made))
        for relative in files:
            _run([sbcast, "--force", str(source / relative), str(target / relative)])
        method = "sbcast"
    else:
        try:
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(source, target, copy_function=shutil.copyfile)
        except OSError as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise StagingError(f"cannot copy {source} to {target}: {exc}") from exc
        method = "copy"
    total = _check(target, files, sizes)
    return Staged(
        path=target,
        root=root,
        files=len(files),
        bytes=total,
        seconds=round(time.monotonic() - started, 3),
        nodes=nodes,
        method=method,
    )


def unstage(staged: Staged) -> None:
    """Remove the node-local copies (best effort: scratch is the node's to clean too)."""
    if staged.nodes > 1:
        with contextlib.suppress(StagingError):
            _run(_one_per_node(staged.nodes, "rm", "-rf", "--", str(staged.root)))
    shutil.rmtree(staged.root, ignore_errors=True)


__all__ = ["Staged", "StagingError", "scratch_root", "stage", "unstage"]
