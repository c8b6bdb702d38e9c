"""Snapshots on the job's side of the file system: write one atomically, list the complete
ones, repair what a crash interrupted. Standard library only (it runs inside training jobs).

A save writes into ``snapshots/.tmp-<tag>-<pid>-<n>/``; ``commit`` fsyncs every file and
folder, writes ``manifest.json`` last (fsynced), then renames the folder to ``snapshots/<tag>``
and fsyncs ``snapshots/``. A crash before the rename leaves only a hidden temp folder; after
it, a complete snapshot. Saving a tag that exists replaces it: the old folder is renamed to
``.old-<tag>-…`` first, the new one renamed into place, the old one deleted; ``recover``
finishes (or undoes) a replacement a crash interrupted.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsml_hpc.errors import SnapshotError
from nsml_hpc.job.snapshot_format import (
    DELETING_PREFIX,
    MANIFEST_FILE,
    OLD_PREFIX,
    TMP_PREFIX,
    FileEntry,
    Manifest,
    ManifestError,
    is_listed_name,
    parse_manifest,
    validate_tag,
)

MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_counter = itertools.count()


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (creations, renames) durable; a no-op where unsupported."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(handle)


def _fsync_file(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def collect_files(folder: Path) -> list[FileEntry]:
    """Every regular file under ``folder`` (sorted), fsynced; folders fsynced bottom-up."""
    entries: list[FileEntry] = []
    folders: list[Path] = []
    for directory, subdirs, files in os.walk(folder):
        here = Path(directory)
        folders.append(here)
        for name in sorted(subdirs):
            if (here / name).is_symlink():
                raise SnapshotError(
                    f"snapshot folder holds a link {(here / name).relative_to(folder)}; "
                    "snapshots hold regular files only"
                )
        for name in sorted(files):
            path = here / name
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink() or not path.is_file():
                raise SnapshotError(
                    f"snapshot file {relative} is not a regular file; snapshots hold "
                    "regular files only"
                )
            if relative == MANIFEST_FILE:
                raise SnapshotError("manifest.json is written by nsml-hpc; use another file name")
            _fsync_file(path)
            entries.append(FileEntry(relative, path.stat().st_size))
    for folder_path in reversed(folders):
        fsync_dir(folder_path)
    entries.sort(key=lambda entry: entry.path)
    return entries


def _write_manifest(folder: Path, manifest: Manifest) -> None:
    path = folder / MANIFEST_FILE
    data = json.dumps(manifest.to_json(), indent=2, sort_keys=True, allow_nan=False)
    with open(path, "x", encoding="utf-8") as out:
        out.write(data + "\n")
        out.flush()
        os.fsync(out.fileno())


def remove_tree(path: Path, root: Path) -> None:
    """Delete ``path`` only if it is a real folder directly inside ``root`` (never a link)."""
    if path.parent != root or path.is_symlink() or not path.is_dir():
        raise SnapshotError(f"refusing to delete {path}: not a folder directly in {root}")
    shutil.rmtree(path)


@dataclass
class PendingSnapshot:
    """A snapshot being written: ``folder`` is where the training code writes."""

    root: Path
    tag: str
    folder: Path

    @classmethod
    def begin(cls, root: Path, tag: str) -> PendingSnapshot:
        validate_tag(tag)
        root.mkdir(parents=True, exist_ok=True)
        folder = root / f"{TMP_PREFIX}{tag}-{os.getpid()}-{next(_counter)}"
        folder.mkdir()
        return cls(root=root, tag=tag, folder=folder)

    def abort(self) -> None:
        if self.folder.exists():
            remove_tree(self.folder, self.root)

    def commit(
        self,
        *,
        step: int | None,
        metrics: dict[str, float | None],
        job_id: str | None,
        session: str | None,
        restart_count: int,
        extra: dict[str, Any] | None = None,
    ) -> Path:
        """Seal the folder and make it visible as ``snapshots/<tag>`` in one rename."""
        files = collect_files(self.folder)
        manifest = Manifest(
            tag=self.tag,
            step=step,
            metrics=metrics,
            files=tuple(files),
            created=time.time(),
            job_id=job_id,
            session=session,
            restart_count=restart_count,
            extra=extra or {},
        )
        _write_manifest(self.folder, manifest)
        fsync_dir(self.folder)
        final = self.root / self.tag
        try:
            self.folder.rename(final)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR, errno.ENOTDIR):
                raise
            self._replace(final)
        fsync_dir(self.root)
        return final

    def _replace(self, final: Path) -> None:
        old = self.root / f"{OLD_PREFIX}{self.tag}-{os.getpid()}-{next(_counter)}"
        try:
            final.rename(old)
        except FileNotFoundError:  # deleted meanwhile (gc, model rm): nothing to replace
            self.folder.rename(final)
            return
        self.folder.rename(final)
        fsync_dir(self.root)
        remove_tree(old, self.root)


def _tag_of_hidden(name: str, prefix: str) -> str | None:
    """``.old-<tag>-<pid>-<n>`` -> tag."""
    parts = name[len(prefix) :].rsplit("-", 2)
    return parts[0] if len(parts) == 3 and parts[0] else None


def recover(root: Path, *, drop_temp: bool) -> list[str]:
    """Finish what a crash interrupted (only when no process of the session is saving):
    an interrupted replacement is completed or undone, and with ``drop_temp`` unfinished
    saves are removed. Returns what was done, for the event log."""
    done: list[str] = []
    try:
        names = sorted(os.listdir(root))  # noqa: PTH208 - names only
    except FileNotFoundError:
        return done
    for name in names:
        path = root / name
        if name.startswith(OLD_PREFIX):
            tag = _tag_of_hidden(name, OLD_PREFIX)
            if tag is not None and not (root / tag).exists() and (path / MANIFEST_FILE).is_file():
                path.rename(root / tag)
                done.append(f"restored {tag} from an interrupted replacement")
            else:
                remove_tree(path, root)
                done.append(f"removed {name}")
        elif name.startswith(TMP_PREFIX) and drop_temp:
            remove_tree(path, root)
            done.append(f"removed unfinished save {name}")
    if done:
        fsync_dir(root)
    return done


@dataclass(frozen=True)
class Listing:
    """Complete snapshots of one folder, and the ones that are damaged (with why)."""

    intact: list[tuple[Manifest, Path]]
    damaged: dict[str, str]


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_FILE
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError("manifest.json is missing") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError("manifest.json is too large")
    try:
        data = json.loads(raw)
    except ValueError:
        raise ManifestError("manifest.json is not valid JSON") from None
    return parse_manifest(data, folder.name)


def check_files(manifest: Manifest, folder: Path) -> str | None:
    """Why the folder no longer matches its manifest (files missing or resized), or None."""
    missing: list[str] = []
    resized: list[str] = []
    for entry in manifest.files:
        try:
            size = os.stat(folder / entry.path).st_size  # noqa: PTH116 - one stat per file
        except OSError:
            missing.append(entry.path)
            continue
        if size != entry.size:
            resized.append(entry.path)
    if not missing and not resized:
        return None
    parts = []
    if missing:
        parts.append("missing " + ", ".join(missing[:5]) + (" …" if len(missing) > 5 else ""))
    if resized:
        parts.append("size changed " + ", ".join(resized[:5]) + (" …" if len(resized) > 5 else ""))
    return "; ".join(parts)


def list_snapshots(root: Path, *, verify: bool = True) -> Listing:
    intact: list[tuple[Manifest, Path]] = []
    damaged: dict[str, str] = {}
    try:
        names = sorted(os.listdir(root))  # noqa: PTH208 - names only
    except (FileNotFoundError, NotADirectoryError):
        return Listing(intact, damaged)
    for name in names:
        if not is_listed_name(name):
            continue
        folder = root / name
        if folder.is_symlink() or not folder.is_dir():
            continue
        try:
            manifest = read_manifest(folder)
        except ManifestError as exc:
            damaged[name] = str(exc)
            continue
        except OSError as exc:
            damaged[name] = f"unreadable: {exc.strerror or exc}"
            continue
        problem = check_files(manifest, folder) if verify else None
        if problem is not None:
            damaged[name] = problem
            continue
        intact.append((manifest, folder))
    return Listing(intact, damaged)


def hidden_entries(root: Path) -> list[str]:
    """Temp, replaced and deleting folders (for cleanup and for tests)."""
    try:
        names = os.listdir(root)  # noqa: PTH208 - names only
    except FileNotFoundError:
        return []
    prefixes = (TMP_PREFIX, OLD_PREFIX, DELETING_PREFIX)
    return sorted(name for name in names if name.startswith(prefixes))
