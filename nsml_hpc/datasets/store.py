"""Datasets on a cluster: ``dataset push/ls/show/rm`` and the version ``submit --dataset``
names.

A push makes an immutable, versioned copy under the cluster's dataset root (the profile's
``dataset_root``, else ``<run_root>/<user>/.datasets``)::

    <root>/<name>/<version>/manifest.json   name, version, each file's size, mode, sha256
    <root>/<name>/<version>/data/...        the files, read-only

It is built under a temporary name (``.<version>.tmp-...``) and renamed into place only when
complete (manifest last), so a dropped connection never leaves something that looks like a
version, and two pushes racing for one version number cannot both win (the rename refuses to
replace). Over SSH the upload is incremental like a code upload: the files of the newest
version whose content is unchanged are copied on the cluster itself, only the rest is sent
(:mod:`nsml_hpc.code.upload`). A push of exactly the newest version's content makes no new
version. The cluster's folders are the truth; the catalog mirrors them (and records which
version each session reads). ``dataset rm`` is refused while a session that is not finished
reads the version.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nsml_hpc.backends.files import RunFiles
from nsml_hpc.catalog.dataset_models import DatasetVersionRecord
from nsml_hpc.catalog.datasets import (
    VersionFacts,
    claim_version_deletion,
    dataset_versions,
    drop_version,
    readers,
    release_version_claim,
    store_versions,
)
from nsml_hpc.code.selection import CodeFile
from nsml_hpc.code.upload import (
    Progress,
    Recorded,
    Seed,
    UploadStats,
    local_files,
    manifest_document,
    parse_manifest,
)
from nsml_hpc.config.identity import current_user
from nsml_hpc.context import Context
from nsml_hpc.errors import NotFoundError, NsmlError, SpecError
from nsml_hpc.job.layout import DATASET_DATA_DIR, DATASET_MANIFEST, DATASETS_DIR, TEMP_MARK
from nsml_hpc.job.spec import DatasetUse, SessionSpec, has_control_characters, validate_dataset_name
from nsml_hpc.submit.render import check_cluster_path
from nsml_hpc.submit.rundir import json_bytes, read_json, run_root_for

MANIFEST_FORMAT = 1
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
GIB = 1024**3


@dataclass(frozen=True)
class DatasetVersion:
    """One version of a dataset on a cluster, and the sessions that read it."""

    cluster: str
    name: str
    version: int
    path: str  # the version's folder
    bytes: int
    files: int
    created_at: float
    created_by: str
    source: str
    digest: str
    readers: list[tuple[str, str]] = field(default_factory=list)  # (session, state)

    @property
    def data_path(self) -> str:
        return f"{self.path}/{DATASET_DATA_DIR}"

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["readers"] = [{"session": s, "state": st} for s, st in self.readers]
        data["data_path"] = self.data_path
        return data


@dataclass(frozen=True)
class Pushed:
    version: DatasetVersion
    created: bool  # False: the newest version already held exactly this content
    upload: UploadStats | None = None


# --- where datasets live ------------------------------------------------------------------------


def dataset_root(ctx: Context, cluster: str) -> str:
    """The cluster's dataset root (absolute, checked like a run root)."""
    profile = ctx.settings.profile(cluster)
    backend = ctx.backend_for(cluster)
    files = backend.files
    root = profile.dataset_root
    if root is None:
        run_root = run_root_for(profile, ctx.settings.run_root, files)
        resolved = posixpath.join(run_root, backend.user, DATASETS_DIR)
    elif not profile.remote:
        resolved = str(Path(root).expanduser().resolve())
    else:
        root = "" if root == "~" else root.removeprefix("~/")
        resolved = root if root.startswith("/") else posixpath.join(files.home(), root)
        resolved = posixpath.normpath(resolved)
    return check_cluster_path(f"dataset_root of cluster {cluster}", resolved)


# --- reading what a cluster holds -------------------------------------------------------------


def _digest(manifest: dict[str, Recorded]) -> str:
    """sha256 over every file's name, size and content hash (what makes two versions equal)."""
    digest = hashlib.sha256()
    for name, entry in sorted(manifest.items()):
        digest.update(f"{name}\0{entry.size}\0{entry.sha256}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _facts(name: str, version: int, folder: str, document: Any) -> VersionFacts | None:
    if not isinstance(document, dict) or document.get("name") != name:
        return None
    manifest = parse_manifest({"version": 1, "files": document.get("files")})
    created = document.get("created")
    return VersionFacts(
        name=name,
        version=version,
        path=folder,
        bytes=sum(entry.size for entry in manifest.values()),
        file_count=len(manifest),
        digest=_digest(manifest),
        created_at=float(created) if isinstance(created, int | float) else 0.0,
        created_by=str(document.get("created_by") or "")[:64],
        source=str(document.get("source") or ""),
    )


def _version_dirs(files: RunFiles, name_dir: str) -> list[int]:
    return sorted(
        int(entry.name)
        for entry in files.list_dir(name_dir) or []
        if entry.is_dir and entry.name.isdigit() and entry.name.isascii()
    )


def _read_manifest(files: RunFiles, folder: str) -> Any:
    return read_json(files, f"{folder}/{DATASET_MANIFEST}", MAX_MANIFEST_BYTES)


def scan(ctx: Context, cluster: str, name: str | None = None) -> list[DatasetVersionRecord]:
    """Mirror what the cluster holds (of dataset ``name``, or of all) into the catalog and
    return the rows. Versions are immutable: only a version the catalog does not know yet
    has its manifest read."""
    files = ctx.backend_for(cluster).files
    root = dataset_root(ctx, cluster)
    known = {
        (row.name, row.version): row
        for row in dataset_versions(ctx.catalog, cluster=cluster, name=name)
    }
    names = (
        [name]
        if name is not None
        else sorted(
            entry.name
            for entry in files.list_dir(root) or []
            if entry.is_dir and not entry.name.startswith(".")
        )
    )
    found: list[VersionFacts] = []
    for dataset in names:
        for version in _version_dirs(files, f"{root}/{dataset}"):
            folder = f"{root}/{dataset}/{version}"
            row = known.get((dataset, version))
            if row is not None and row.path == folder:
                found.append(
                    VersionFacts(
                        dataset, version, folder, row.bytes, row.file_count, row.digest,
                        row.created_at, row.created_by, row.source,
                    )
                )  # fmt: skip
                continue
            facts = _facts(dataset, version, folder, _read_manifest(files, folder))
            if facts is not None:
                found.append(facts)
    store_versions(ctx.catalog, cluster, name, found)
    return dataset_versions(ctx.catalog, cluster=cluster, name=name)


def _public(ctx: Context, row: DatasetVersionRecord) -> DatasetVersion:
    return DatasetVersion(
        cluster=row.cluster,
        name=row.name,
        version=row.version,
        path=row.path,
        bytes=row.bytes,
        files=row.file_count,
        created_at=row.created_at,
        created_by=row.created_by,
        source=row.source,
        digest=row.digest,
        readers=[
            (session, state)
            for session, state, _ in readers(ctx.catalog, row.cluster, row.name, row.version)
        ],
    )


def list_datasets(ctx: Context, cluster: str) -> list[DatasetVersion]:
    """Every version of every dataset on ``cluster`` (read from the cluster)."""
    return [_public(ctx, row) for row in scan(ctx, cluster)]


def show_dataset(ctx: Context, cluster: str, ref: str) -> list[DatasetVersion]:
    """``NAME`` (all its versions) or ``NAME:VERSION``, with the sessions that read each."""
    from nsml_hpc.job.spec import parse_dataset_ref

    name, version = parse_dataset_ref(ref)
    rows = scan(ctx, cluster, name)
    if version is not None:
        rows = [row for row in rows if row.version == version]
    if not rows:
        raise NotFoundError(
            f"cluster {cluster} has no dataset {ref}"
            + ("" if version is None else f" (versions: {_versions_text(ctx, cluster, name)})")
        )
    return [_public(ctx, row) for row in rows]


def _versions_text(ctx: Context, cluster: str, name: str) -> str:
    rows = dataset_versions(ctx.catalog, cluster=cluster, name=name)
    return ", ".join(str(row.version) for row in rows) or "none"


# --- push ---------------------------------------------------------------------------------------


def _local_listing(path: Path) -> tuple[Path, list[CodeFile]]:
    """(root, files) of what to push: a folder's regular files, or one file."""
    if not path.exists() and not path.is_symlink():
        raise SpecError(f"dataset path {path} does not exist")
    if path.is_file():
        return path.parent, [CodeFile(path.name, path.stat().st_size)]
    if not path.is_dir():
        raise SpecError(f"dataset path {path} is neither a file nor a folder")
    found: list[CodeFile] = []
    for directory, subdirs, names in os.walk(path):
        here = Path(directory)
        subdirs.sort()
        for name in sorted([*names, *(d for d in subdirs if (here / d).is_symlink())]):
            item = here / name
            relative = item.relative_to(path).as_posix()
            if has_control_characters(relative) or "\\" in relative:
                raise SpecError(f"dataset file name {relative!r} holds control characters")
            if item.is_symlink() or not item.is_file():
                raise SpecError(
                    f"{item} is a link or a special file; a dataset holds regular files only"
                )
            found.append(CodeFile(relative, item.stat().st_size))
    return path, found


def _check_name_collision(files: RunFiles, root: str, name: str) -> None:
    for entry in files.list_dir(root) or []:
        if entry.is_dir and entry.name != name and entry.name.lower() == name.lower():
            raise SpecError(
                f"dataset name {name!r} collides with the existing dataset {entry.name!r} "
                "(names differing only in case are refused); push to that name or pick another"
            )


def _manifest(
    name: str, version: int, source: Path, manifest: dict[str, Recorded], now: float
) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "name": name,
        "version": version,
        "created": now,
        "created_by": current_user(),
        "source": str(source),
        "bytes": sum(entry.size for entry in manifest.values()),
        "digest": _digest(manifest),
        "files": manifest_document(manifest)["files"],
    }


def push_dataset(
    ctx: Context,
    name: str,
    path: Path,
    cluster: str,
    *,
    progress: Progress | None = None,
    now: float | None = None,
) -> Pushed:
    """Push ``path`` (a folder or a file) as the next version of dataset ``name``."""
    now = time.time() if now is None else now
    validate_dataset_name(name)
    source = path.expanduser().absolute()
    local_root, listing = _local_listing(source)
    if not listing:
        raise SpecError(f"dataset path {source} is empty: nothing to push")
    total = sum(item.size for item in listing)
    guard = ctx.settings.max_dataset_bytes
    if total > guard:
        raise SpecError(
            f"dataset path {source} holds {total / GIB:.2f} GiB, more than the max_dataset_gb "
            f"guard of {guard / GIB:.2f} GiB (raise max_dataset_gb in the config to push it)"
        )
    local = local_files(local_root, listing)
    digest = _digest({f.relative: Recorded(f.size, f.mtime, f.mode, f.sha256) for f in local})
    files = ctx.backend_for(cluster).files
    root = dataset_root(ctx, cluster)
    name_dir = f"{root}/{name}"
    files.make_dirs(root)
    _check_name_collision(files, root, name)
    existing = _version_dirs(files, name_dir)
    seed: Seed | None = None
    if existing:
        newest = f"{name_dir}/{existing[-1]}"
        document = _read_manifest(files, newest)
        facts = _facts(name, existing[-1], newest, document)
        if facts is not None and facts.digest == digest:
            rows = scan(ctx, cluster, name)
            row = next(r for r in rows if r.version == existing[-1])
            return Pushed(_public(ctx, row), created=False)
        if isinstance(document, dict):
            recorded = parse_manifest({"version": 1, "files": document.get("files")})
            seed = Seed(f"{newest}/{DATASET_DATA_DIR}", recorded)
    version = (existing[-1] if existing else 0) + 1
    final = f"{name_dir}/{version}"
    temp = f"{name_dir}/.{version}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(3)}"
    try:
        files.make_dirs(temp)
        stats = files.upload_tree(
            local_root, local, f"{temp}/{DATASET_DATA_DIR}", seed=seed, progress=progress
        )
        files.make_read_only(f"{temp}/{DATASET_DATA_DIR}")
        files.write_bytes(
            f"{temp}/{DATASET_MANIFEST}",
            json_bytes(_manifest(name, version, source, stats.manifest, now)),
        )
        try:
            files.rename(temp, final)
        except NsmlError as exc:
            if files.exists(final):
                raise SpecError(
                    f"another push created {name}:{version} meanwhile; push again "
                    f"(it becomes {name}:{version + 1})"
                ) from exc
            raise
    except BaseException as exc:
        try:
            files.remove_tree(temp, inside=name_dir)
        except NsmlError as cleanup:
            exc.add_note(f"the partial upload {temp} could not be removed: {cleanup}")
        raise
    rows = scan(ctx, cluster, name)
    row = next(r for r in rows if r.version == version)
    return Pushed(_public(ctx, row), created=True, upload=stats)


# --- remove -------------------------------------------------------------------------------------


def remove_dataset(
    ctx: Context, cluster: str, ref: str, *, all_versions: bool = False
) -> list[DatasetVersion]:
    """Delete ``NAME:VERSION`` (or every version of ``NAME`` with ``all_versions``), each
    refused while a session that is not finished reads it. Nothing is deleted when any is
    refused."""
    from nsml_hpc.job.spec import parse_dataset_ref

    name, version = parse_dataset_ref(ref)
    if version is None and not all_versions:
        raise SpecError(f"name the version to delete ({name}:N), or give --all for every version")
    rows = scan(ctx, cluster, name)
    if version is not None:
        rows = [row for row in rows if row.version == version]
    if not rows:
        raise NotFoundError(f"cluster {cluster} has no dataset {ref}")
    claimed: list[DatasetVersionRecord] = []
    try:
        for row in rows:
            assert row.id is not None
            live = claim_version_deletion(ctx.catalog, row.id)
            if live:
                shown = ", ".join(live[:5]) + (" …" if len(live) > 5 else "")
                raise SpecError(
                    f"dataset {row.name}:{row.version} is read by {len(live)} session(s) that "
                    f"are not finished ({shown}); stop them or wait until they end"
                )
            claimed.append(row)
    except BaseException:
        for row in claimed:
            release_version_claim(ctx.catalog, row.id or 0)
        raise
    files = ctx.backend_for(cluster).files
    root = dataset_root(ctx, cluster)
    removed: list[DatasetVersion] = []
    for row in claimed:
        name_dir = f"{root}/{row.name}"
        hidden = f"{name_dir}/.{row.version}.deleting-{row.id}"
        try:
            if files.stat(row.path) is not None:
                files.rename(row.path, hidden)
            if files.stat(hidden) is not None:
                files.remove_tree(hidden, inside=name_dir)
        except NsmlError:
            if files.stat(row.path) is not None:
                release_version_claim(ctx.catalog, row.id or 0)
            raise
        removed.append(_public(ctx, row))
        drop_version(ctx.catalog, row.id or 0)
    return removed


# --- submit --dataset ---------------------------------------------------------------------------


def resolve_dataset(ctx: Context, spec: SessionSpec) -> SessionSpec:
    """``spec`` with its dataset pinned to a version on its cluster (the newest, unless the
    version was given) and that version's data folder: what the job reads."""
    use = spec.dataset
    if use is None:
        return spec
    rows = scan(ctx, spec.cluster, use.name)
    if not rows:
        raise NotFoundError(
            f"cluster {spec.cluster} has no dataset {use.name!r} "
            f"(push it first: nsml-hpc dataset push {use.name} PATH --cluster {spec.cluster})"
        )
    if use.version is None:
        row = rows[-1]
    else:
        match = [row for row in rows if row.version == use.version]
        if not match:
            shown = ", ".join(str(row.version) for row in rows)
            raise NotFoundError(
                f"dataset {use.name} has no version {use.version} on cluster {spec.cluster} "
                f"(versions: {shown})"
            )
        row = match[0]
    data = f"{row.path}/{DATASET_DATA_DIR}"
    if ctx.backend_for(spec.cluster).files.stat(f"{row.path}/{DATASET_MANIFEST}") is None:
        raise NotFoundError(f"dataset {use.name}:{row.version} vanished from {row.path}")
    return replace(spec, dataset=DatasetUse(use.name, row.version, use.stage, data))


def sessions_reading(ctx: Context, name: str, version: int | None = None) -> Sequence[int]:
    """Ids of the sessions that read dataset ``name`` (``version``), on any cluster."""
    from nsml_hpc.catalog.datasets import sessions_on_dataset

    return [link.session_id for link in sessions_on_dataset(ctx.catalog, name, version)]


__all__ = [
    "DatasetVersion",
    "Pushed",
    "dataset_root",
    "list_datasets",
    "push_dataset",
    "remove_dataset",
    "resolve_dataset",
    "scan",
    "sessions_reading",
    "show_dataset",
]
