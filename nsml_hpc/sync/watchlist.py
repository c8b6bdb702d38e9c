"""The sync's watch list: what would make the next sync do anything, so that ``ps`` can skip
a sync that would find nothing new without importing the full catalog (SQLAlchemy, SQLModel).

A full sync that saw everything it looked at (no cluster error, every run directory on this
machine's file system) ends by writing, for its catalog URL and user (:func:`write`):

- ``paths``: every file and folder it stat'ed, sized, read or listed, each with the
  ``(size, mtime_ns)`` it had before the sync looked (``None``: it did not exist). Which paths
  these are is whatever the sync's code touched through the files seam
  (:class:`nsml_hpc.sync.watch.Watcher`), not a list restated here;
- ``valid_until``: the earliest time at which the sync would decide something else by the
  clock alone (the Slurm clock coming due, a wrapper's heartbeat going silent, the end of a
  recently-ended window, the next look for captured logs, a snapshot folder becoming old enough
  to trust, a reservation going stale), each reported by the code that decides it;
- ``fingerprint``: a digest of the catalog rows the sync reads for those sessions, the
  caller's Slurm clocks (a user's action records ``wanted_at`` there) and poll claims
  (:meth:`~nsml_hpc.catalog.quickread.QuickReader.sync_fingerprint`), computed with the
  stdlib after the sync's last write;
- the schema revision and a digest of the settings.

:func:`still_quiet` (standard library only) says True only when every one of these still holds;
any doubt (no file, another format, URL, user, revision or settings, a path changed or gone,
the time passed, a catalog row changed, anything unreadable) says False and the caller runs
the full sync, which writes a fresh list. Written atomically (a temporary file renamed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nsml_hpc.catalog.quickread import REVISION, Fallback, QuickReader, sqlite_path
from nsml_hpc.config.locations import state_dir
from nsml_hpc.slurm.states import TERMINAL_STATES
from nsml_hpc.sync.clocks import LEGACY_LOST_REASON
from nsml_hpc.sync.events_state import PROVISIONAL_PREFIX

FORMAT = 1
STALE_SECONDS = 3600.0  # a list this old holds nothing (a live session is looked at every 30 s)
Signature = tuple[int, int] | None  # (size, mtime_ns); None: the path does not exist


def watch_file(catalog_url: str) -> Path:
    """The watch list of ``catalog_url`` (one per catalog, in the user's state folder)."""
    key = hashlib.sha256(catalog_url.encode()).hexdigest()[:24]
    return state_dir() / "watch" / f"{key}.json"


def signature(path: str) -> Signature:
    """``(size, mtime_ns)`` of ``path`` (links followed), None if it does not exist; an error
    other than a missing path raises OSError (the path cannot be watched)."""
    try:
        info = os.stat(path)  # noqa: PTH116 - one per watched path: pathlib costs more
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (info.st_size, info.st_mtime_ns)


def catalog_file(catalog_url: str) -> str | None:
    """The catalog's file, resolved (a relative URL names another file in another folder)."""
    path = sqlite_path(catalog_url)
    return str(path.resolve()) if path is not None else None


def settings_digest(settings: Any) -> str:
    """A digest of the settings (a dataclass: its repr names every field)."""
    return hashlib.sha256(repr(settings).encode()).hexdigest()


def fingerprint_of(reader: QuickReader, since: float) -> str:
    """The catalog's side of the watch list, for the caller (see the module doc)."""
    return reader.sync_fingerprint(
        terminal=sorted(str(state) for state in TERMINAL_STATES),
        since=since,
        provisional=PROVISIONAL_PREFIX,
        legacy_lost=LEGACY_LOST_REASON,
    )


def write(
    *,
    catalog_url: str,
    settings: Any,
    reader: QuickReader,
    since: float,
    valid_until: float,
    paths: Mapping[str, Signature],
    now: float,
) -> Path:
    """Write the watch list of ``catalog_url`` atomically; returns its path."""
    target = watch_file(catalog_url)
    data = {
        "format": FORMAT,
        "catalog_url": catalog_url,
        "catalog_file": catalog_file(catalog_url),
        "user": reader.user,
        "revision": REVISION,
        "settings": settings_digest(settings),
        "written_at": now,
        "valid_until": valid_until,
        "since": since,
        "fingerprint": fingerprint_of(reader, since),
        "paths": _by_folder(paths),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".watch-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(json.dumps(data, separators=(",", ":")))
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _prune(target)
    return target


def _prune(written: Path) -> None:
    """Remove the lists of catalogs no sync wrote to for :data:`STALE_SECONDS` before
    ``written`` (temporary catalogs of tests and benchmarks, catalogs gone): they could never
    hold again. (File times against file times: the file system's clock.)"""
    with contextlib.suppress(OSError):
        newest = written.stat().st_mtime
        for entry in os.scandir(written.parent):
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < newest - STALE_SECONDS:
                    Path(entry.path).unlink()


def _by_folder(paths: Mapping[str, Signature]) -> dict[str, dict[str, list[int] | None]]:
    """``{folder: {name: [size, mtime_ns] or None}}`` (a run directory's name once)."""
    found: dict[str, dict[str, list[int] | None]] = {}
    for path, sig in paths.items():
        folder, _, name = path.rpartition("/")
        found.setdefault(folder, {})[name] = list(sig) if sig is not None else None
    return found


def forget(catalog_url: str) -> None:
    """No watch list for ``catalog_url``: the next ``ps`` syncs in full."""
    with contextlib.suppress(OSError):
        watch_file(catalog_url).unlink(missing_ok=True)


def still_quiet(catalog_url: str, settings: Any, reader: QuickReader, now: float) -> bool:
    """Whether the last full sync's watch list says a sync now would do nothing at all."""
    try:
        text = watch_file(catalog_url).read_text(encoding="utf-8")
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return False
        if (
            data.get("catalog_url") != catalog_url
            or data.get("catalog_file") != catalog_file(catalog_url)
            or data.get("user") != reader.user
            or data.get("revision") != REVISION
            or data.get("settings") != settings_digest(settings)
        ):
            return False
        written_at, valid_until = float(data["written_at"]), float(data["valid_until"])
        if not written_at <= now < valid_until:
            return False
        paths = data["paths"]
        if not isinstance(paths, dict):
            return False
        for folder, names in paths.items():
            for name, recorded in names.items():
                found = signature(f"{folder}/{name}")
                if (list(found) if found is not None else None) != recorded:
                    return False
        return bool(data["fingerprint"] == fingerprint_of(reader, float(data["since"])))
    except (OSError, ValueError, TypeError, KeyError, AttributeError, Fallback):
        return False
