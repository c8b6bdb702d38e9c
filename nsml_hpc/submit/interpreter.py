"""Which Python runs a job on a remote cluster.

A profile's ``remote_python`` decides when it is set. Without it a remote job used to run
the cluster's bare ``python3``, which on many clusters is the operating system's old one
(CentOS 7's 3.6) while a newer one sits beside it as ``python3.11``. Now the cluster is asked
once (one command over the existing connection) which of :data:`CANDIDATES` it has, and the
newest one that is recent enough for the in-job code is used; the answer is kept in the
catalog for a day (``catalog_meta``), so submits do not ask again. ``cluster test`` shows the
choice and checks that the chosen interpreter really imports the in-job modules.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from dataclasses import dataclass, replace

from nsml_hpc.backends.base import SlurmBackend
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import CatalogMeta
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.errors import ConfigError

MIN_JOB_PYTHON = (3, 10)  # the in-job modules use PEP 604 unions at run time
CANDIDATES = ("python3.14", "python3.13", "python3.12", "python3.11", "python3.10", "python3")
CACHE_SECONDS = 24 * 3600.0
PROBE_TIMEOUT = 60.0
_VERSION_CODE = "import sys; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])"


@dataclass(frozen=True)
class Found:
    """An interpreter on the cluster: the name asked for, its path and version."""

    name: str
    path: str
    version: str

    @property
    def recent_enough(self) -> bool:
        return version_tuple(self.version) >= MIN_JOB_PYTHON


def version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(".")[:2])
    except ValueError:
        return (0,)


def probe_script(candidates: tuple[str, ...] = CANDIDATES) -> str:
    """One POSIX shell command that prints ``NAME``, path and version of each candidate."""
    code = shlex.quote(_VERSION_CODE)
    loop = " ".join(shlex.quote(name) for name in candidates)
    return (
        f'for p in {loop}; do if command -v "$p" >/dev/null 2>&1; then '
        f'echo "@@ $p"; "$p" -c {code} 2>/dev/null; fi; done; true'
    )


def parse_probe(text: str) -> list[Found]:
    """The interpreters :func:`probe_script` printed, in its order (pure)."""
    found: list[Found] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("@@ "):
            continue
        rest = lines[index + 1 : index + 3]
        if len(rest) == 2 and not rest[0].startswith("@@ ") and not rest[1].startswith("@@ "):
            found.append(Found(line[3:].strip(), rest[0].strip(), rest[1].strip()))
    return found


def best_of(found: list[Found]) -> Found | None:
    """The newest interpreter recent enough for the in-job code (None if there is none)."""
    usable = [item for item in found if item.recent_enough]
    return max(usable, key=lambda item: version_tuple(item.version), default=None)


def probe(backend: SlurmBackend) -> list[Found]:
    """Ask the cluster (one command) which candidate interpreters it has."""
    runner = getattr(backend, "runner", None)
    if runner is None:
        return []
    result = runner.run(["sh", "-c", probe_script()], timeout=PROBE_TIMEOUT)
    return parse_probe(result.stdout)


def _cache_key(cluster: str) -> str:
    key = f"job_python:{cluster}"
    if len(key) <= 64:
        return key
    return "job_python#" + hashlib.sha256(cluster.encode("utf-8")).hexdigest()[:40]


def job_python(
    catalog: Catalog, backend: SlurmBackend, cluster: str, *, now: float | None = None
) -> Found:
    """The interpreter a remote job of ``cluster`` runs with when its profile names none:
    the catalog's answer of the last day, else the cluster's: the newest recent-enough one
    (ConfigError if it has only older ones; the bare ``python3`` if none answers at all)."""
    now = time.time() if now is None else now
    key = _cache_key(cluster)
    with catalog.session() as db:
        row = db.get(CatalogMeta, key)
    if row is not None:
        try:
            data = json.loads(row.value)
            if now - float(data["at"]) < CACHE_SECONDS:
                return Found(str(data["name"]), str(data["path"]), str(data["version"]))
        except (ValueError, KeyError, TypeError):
            pass
    found = probe(backend)
    if not found:
        # nothing answered on the cluster's PATH (a remote_path without Python, a probe that
        # could not run): the bare python3 as before; submit's own errors, and cluster
        # test, say what is wrong with that PATH
        return Found("python3", "python3", "")
    chosen = best_of(found)
    if chosen is None:
        seen = ", ".join(f"{item.path} {item.version}" for item in found) or "none on PATH"
        raise ConfigError(
            f"cluster {cluster} has no Python {'.'.join(map(str, MIN_JOB_PYTHON))} or newer "
            f"for jobs (found: {seen}); set one with nsml-hpc cluster add {cluster} --replace "
            "... --remote-python /path/to/python3"
        )
    value = json.dumps(
        {"name": chosen.name, "path": chosen.path, "version": chosen.version, "at": now}
    )
    with catalog.session() as db:
        existing = db.get(CatalogMeta, key)
        if existing is None:
            db.add(CatalogMeta(key=key, value=value))
        else:
            existing.value = value
            db.add(existing)
    return chosen


def job_profile(profile: ClusterProfile, catalog: Catalog, backend: SlurmBackend) -> ClusterProfile:
    """``profile`` with the interpreter its jobs run with filled in (remote clusters whose
    profile names none get :func:`job_python`'s choice; others are returned as they are)."""
    if not profile.remote or profile.remote_python:
        return profile
    # an unreachable cluster fails here with its own error (and exit code), naming it
    chosen = job_python(catalog, backend, profile.name)
    return replace(profile, remote_python=chosen.path)


__all__ = [
    "CANDIDATES",
    "MIN_JOB_PYTHON",
    "Found",
    "best_of",
    "job_profile",
    "job_python",
    "parse_probe",
    "probe",
    "probe_script",
]
