"""Checkpoints the training code already writes (Lightning's ``ModelCheckpoint``, a
``torch.save`` loop), kept in the catalog beside ``nsml_hpc.save`` snapshots: ``model ls``
lists them (marked as found), ``model pull`` and ``fork --snapshot`` take them, and gc's
policies cover them with the same protections.

They are found like metric logs, by the capture walk of the session's code folder (its
working directory): sync passes what each look saw, and ``model ls``/gc/fork walk again. A
file that was part of the uploaded code (a pretrained ``weights.pt`` shipped with the script)
is not a checkpoint of the run and is left out. A file modified within ``SETTLE_SECONDS`` is
listed as *being written*: it cannot be pulled or forked from, and gc leaves it alone, until
a later look sees it settled. Step and epoch come from the file name; its metrics from the
name (Lightning's ``val_loss=0.25``) or, where the name has a step, from what the session
reported at that step.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from nsml_hpc.backends.files import RunFiles
from nsml_hpc.capture.checkpoints import found_tag, parse_checkpoint_name
from nsml_hpc.capture.discover import FoundFile, walk
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.snapshots import ScanChanges, ScannedFound, metrics_at_steps, store_found
from nsml_hpc.code.upload import parse_manifest
from nsml_hpc.job.layout import CODE_DIR, CODE_MANIFEST, PRIVATE_DIR
from nsml_hpc.job.spec import has_control_characters
from nsml_hpc.submit.rundir import read_json

SETTLE_SECONDS = 3.0
WRITING = "being written"


def uploaded_code(files: RunFiles, run_dir: str) -> set[str]:
    """The code files the submit uploaded (relative to the run directory)."""
    manifest = parse_manifest(read_json(files, posixpath.join(run_dir, PRIVATE_DIR, CODE_MANIFEST)))
    return {posixpath.join(CODE_DIR, name) for name in manifest}


def scan_found(
    catalog: Catalog,
    files: RunFiles,
    session_id: int,
    run_dir: str,
    candidates: Sequence[FoundFile],
    now: float,
) -> ScanChanges:
    """Store the checkpoint files a walk saw (sizes in one call; the uploaded code left out)."""
    if candidates:
        code = uploaded_code(files, run_dir)
        candidates = [  # (a name with a newline or an escape could not be shown or typed)
            item
            for item in candidates
            if item.relative not in code and not has_control_characters(item.relative)
        ]
    paths = {item.relative: posixpath.join(run_dir, item.relative) for item in candidates}
    sizes = files.sizes(list(paths.values())) if paths else {}
    named = {
        item.relative: parse_checkpoint_name(posixpath.basename(item.relative))
        for item in candidates
    }
    steps = sorted(
        {
            name.step
            for name in named.values()
            if name is not None and name.step is not None and _only_epoch(name.metrics)
        }
    )
    reported = metrics_at_steps(catalog, session_id, steps)
    settled_ns = int((now - SETTLE_SECONDS) * 1e9)
    scanned: list[ScannedFound] = []
    for item in candidates:
        name = named[item.relative]
        size = sizes.get(paths[item.relative])
        if name is None or size is None:
            continue  # vanished between the listing and the sizes
        metrics = dict(name.metrics)
        if name.step is not None and _only_epoch(name.metrics):
            metrics = {**reported.get(name.step, {}), **metrics}
        problem = None
        if item.mtime_ns >= settled_ns:
            age = max(now - item.mtime_ns / 1e9, 0.0)
            problem = f"{WRITING} (modified {age:.1f} s ago)"
        scanned.append(
            ScannedFound(
                path=item.relative,
                tag=found_tag(item.relative),
                kind=name.kind,
                step=name.step,
                metrics=metrics,
                size=size,
                mtime_ns=item.mtime_ns,
                problem=problem,
            )
        )
    return store_found(catalog, session_id, scanned, now)


def refresh_found(
    catalog: Catalog, files: RunFiles, session_id: int, run_dir: str, now: float
) -> dict[str, str]:
    """Walk the session's code folder again and store its checkpoints (``model ls``, gc,
    fork); returns those that are not usable now: tag -> why."""
    found = walk(run_dir, files=files)
    scan_found(catalog, files, session_id, run_dir, found.checkpoints, now)
    from nsml_hpc.catalog.snapshots import found_records, snapshots_of

    links = found_records(catalog, [session_id])
    return {
        row.tag: row.problem
        for row in snapshots_of(catalog, [session_id])[session_id]
        if row.id in links and row.problem
    }


def _only_epoch(metrics: dict[str, float | None]) -> bool:
    """The name carries no metric values of its own (at most its epoch)."""
    return not set(metrics) - {"epoch"}


def is_writing(problem: str | None) -> bool:
    return bool(problem) and str(problem).startswith(WRITING)


__all__ = [
    "SETTLE_SECONDS",
    "WRITING",
    "is_writing",
    "refresh_found",
    "scan_found",
    "uploaded_code",
]
