"""Planning a code upload: which files to send, which to keep from a seed, which to delete.

A submit to a remote cluster first copies, on the cluster itself, the files of the previous
session's code snapshot (the *seed*) whose recorded content hash and executable bits equal the
local file's, into the new, still temporary, run directory; only those, so that whatever the
previous job wrote into its own folder (outputs, checkpoints, caches) is never copied. A copied
file is kept only if its size and mtime on the cluster are still the recorded ones (nobody
touched it since the seed was made); everything else is sent. The manifest of the new
snapshot is written to ``.nsml/code.json`` so that the next submit can seed from it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsml_hpc.code.selection import CodeFile

Progress = Callable[[int, int], None]  # (bytes sent so far, bytes to send in all)
HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class LocalFile:
    """A file of the snapshot as it is on this machine, right before the upload."""

    relative: str
    size: int
    mtime: int  # whole seconds: what SFTP (v3) and tar carry
    mode: int  # permission bits
    sha256: str


@dataclass(frozen=True)
class RemoteFile:
    relative: str
    size: int
    mtime: int


@dataclass(frozen=True)
class Recorded:
    """One file of a snapshot's manifest, as it was left on the cluster."""

    size: int
    mtime: int
    mode: int
    sha256: str

    def to_json(self) -> list[Any]:
        return [self.size, self.mtime, self.mode, self.sha256]


@dataclass
class UploadPlan:
    send: list[LocalFile] = field(default_factory=list)
    keep: list[LocalFile] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)  # to create, parents first

    @property
    def bytes_to_send(self) -> int:
        return sum(item.size for item in self.send)


@dataclass
class UploadStats:
    files: int = 0
    sent: int = 0
    kept: int = 0
    removed: int = 0
    bytes_sent: int = 0
    manifest: dict[str, Recorded] = field(default_factory=dict)


@dataclass(frozen=True)
class Seed:
    """A previous snapshot on the cluster to copy first: its code folder and manifest."""

    code_dir: str
    manifest: dict[str, Recorded]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def local_files(root: Path, files: Sequence[CodeFile]) -> list[LocalFile]:
    """Stat and hash the snapshot's files (as they are now, not when they were listed)."""
    found: list[LocalFile] = []
    for item in files:
        path = root / item.relative
        info = path.stat()
        found.append(
            LocalFile(
                relative=item.relative,
                size=info.st_size,
                mtime=int(info.st_mtime),
                mode=info.st_mode & 0o777,
                sha256=_sha256(path),
            )
        )
    return found


def _parents(relative: str) -> list[str]:
    parts = relative.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def seed_candidates(local: Sequence[LocalFile], recorded: dict[str, Recorded]) -> list[str]:
    """The files worth copying from the seed: same content and executable bits as here."""
    return [
        item.relative
        for item in local
        if (record := recorded.get(item.relative)) is not None
        and record.sha256 == item.sha256
        and record.size == item.size
        and (record.mode & 0o111) == (item.mode & 0o111)
    ]


def plan_upload(
    local: Sequence[LocalFile],
    present: dict[str, RemoteFile],
    present_dirs: set[str],
    recorded: dict[str, Recorded],
) -> UploadPlan:
    """What to send, keep and delete so that the destination holds exactly ``local``."""
    plan = UploadPlan()
    wanted_dirs: set[str] = set()
    for item in local:
        wanted_dirs.update(_parents(item.relative))
        there = present.get(item.relative)
        record = recorded.get(item.relative)
        unchanged = (
            there is not None
            and record is not None
            and record.sha256 == item.sha256
            and record.size == item.size == there.size
            and record.mtime == there.mtime
            and (record.mode & 0o111) == (item.mode & 0o111)
        )
        (plan.keep if unchanged else plan.send).append(item)
    names = {item.relative for item in local}
    plan.remove = sorted(name for name in present if name not in names)
    plan.directories = sorted(wanted_dirs - present_dirs, key=lambda d: (d.count("/"), d))
    return plan


def manifest_after(plan: UploadPlan, recorded: dict[str, Recorded]) -> dict[str, Recorded]:
    """The new snapshot's manifest: kept files as recorded, sent ones as sent."""
    manifest = {item.relative: recorded[item.relative] for item in plan.keep}
    for item in plan.send:
        manifest[item.relative] = Recorded(item.size, item.mtime, item.mode, item.sha256)
    return dict(sorted(manifest.items()))


def manifest_document(manifest: dict[str, Recorded]) -> dict[str, Any]:
    return {"version": 1, "files": {name: entry.to_json() for name, entry in manifest.items()}}


def parse_manifest(data: Any) -> dict[str, Recorded]:
    """A manifest read back from ``.nsml/code.json``; anything malformed gives an empty one
    (the upload then sends everything, which is always correct)."""
    if not isinstance(data, dict) or data.get("version") != 1:
        return {}
    files = data.get("files")
    if not isinstance(files, dict):
        return {}
    manifest: dict[str, Recorded] = {}
    for name, entry in files.items():
        if (
            isinstance(name, str)
            and isinstance(entry, list)
            and len(entry) == 4
            and all(isinstance(value, int) and not isinstance(value, bool) for value in entry[:3])
            and isinstance(entry[3], str)
        ):
            manifest[name] = Recorded(entry[0], entry[1], entry[2], entry[3])
    return manifest
