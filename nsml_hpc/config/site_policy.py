"""The site's policy on asking Slurm: a system-wide file that user config cannot loosen.

An administrator writes ``/etc/nsml-hpc/site.toml`` (every key optional)::

    [slurm]
    floor_seconds = 120         # the Slurm clock: users may choose longer, never shorter (>= 10)
    action_floor_seconds = 10   # even a user's submit/stop/refresh waits this long after the
                                # last query (>= 1)
    queries_per_hour = 40       # Slurm commands (sacct, squeue) per user and cluster in any
                                # hour (>= 4)

Each user's effective policy is the stricter of the site's and their own (``slurm_floor_seconds``,
``poll_floor_seconds``, ``slurm_queries_per_hour`` in their config): the longer floors and
the lower ceiling (:func:`effective_policy`). ``nsml-hpc cluster test`` prints it.

``NSML_HPC_SITE_CONFIG`` names one more policy file (a group's stricter policy; the tests' own):
it is read as well, never instead, since an environment variable is the user's and may only
tighten. A site file that exists but cannot be read, is not TOML, or holds an unknown key or a
value out of range gives a warning naming the file, and the built-in policy
(:data:`FALLBACK`: 60 s, 5 s, 60 an hour) applies in its place: a broken file never loosens
anything. Without any site file the user's settings apply as they are (defaults: the same).
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

SITE_CONFIG = Path("/etc/nsml-hpc/site.toml")
SITE_CONFIG_ENV = "NSML_HPC_SITE_CONFIG"
# The least a site may set: the documented minimums.
MIN_SITE_FLOOR_SECONDS = 10.0
MIN_SITE_ACTION_FLOOR_SECONDS = 1.0
MIN_SITE_QUERIES_PER_HOUR = 4
HOUR_SECONDS = 3600.0


@dataclass(frozen=True)
class SlurmPolicy:
    """The effective Slurm clock of one user: their settings, held to the site's policy
    (:func:`effective_policy`); :mod:`nsml_hpc.sync.clocks` runs it."""

    floor_seconds: float = 60.0
    action_floor_seconds: float = 5.0
    queries_per_hour: int = 60

    @property
    def burst(self) -> float:
        """Commands that may go out back to back (a user's action right after a query)."""
        return float(min(self.queries_per_hour, max(2, self.queries_per_hour // 10)))

    @property
    def refill_per_second(self) -> float:
        return max(self.queries_per_hour - self.burst, 0.0) / HOUR_SECONDS


@dataclass(frozen=True)
class SitePolicy:
    """What the site's files ask for (None: the file leaves it to the user)."""

    floor_seconds: float | None = None
    action_floor_seconds: float | None = None
    queries_per_hour: int | None = None
    files: tuple[str, ...] = ()  # the policy files that were read
    warnings: tuple[str, ...] = ()  # files that could not be used, and why

    def stricter(self, other: SitePolicy) -> SitePolicy:
        return SitePolicy(
            floor_seconds=_most(self.floor_seconds, other.floor_seconds, max),
            action_floor_seconds=_most(self.action_floor_seconds, other.action_floor_seconds, max),
            queries_per_hour=_most(self.queries_per_hour, other.queries_per_hour, min),
            files=self.files + other.files,
            warnings=self.warnings + other.warnings,
        )


FALLBACK = SitePolicy(floor_seconds=60.0, action_floor_seconds=5.0, queries_per_hour=60)
_KEYS: dict[str, tuple[float, bool]] = {  # key -> (documented minimum, whole number)
    "floor_seconds": (MIN_SITE_FLOOR_SECONDS, False),
    "action_floor_seconds": (MIN_SITE_ACTION_FLOOR_SECONDS, False),
    "queries_per_hour": (MIN_SITE_QUERIES_PER_HOUR, True),
}


def _most(a: Any, b: Any, pick: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return pick(a, b)


def policy_files(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The site file, and the one ``NSML_HPC_SITE_CONFIG`` names (if another)."""
    env = os.environ if environ is None else environ
    paths = [SITE_CONFIG]
    extra = env.get(SITE_CONFIG_ENV)
    if extra and Path(extra).expanduser() != SITE_CONFIG:
        paths.append(Path(extra).expanduser())
    return paths


def load_site_policy(environ: Mapping[str, str] | None = None) -> SitePolicy:
    """The stricter of every policy file there is."""
    policy = SitePolicy()
    for path in policy_files(environ):
        policy = policy.stricter(read_policy_file(path))
    return policy


def read_policy_file(path: Path) -> SitePolicy:
    """One policy file; nothing if it does not exist; :data:`FALLBACK` with a warning naming
    the file if it cannot be used."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return SitePolicy()
    except (OSError, UnicodeDecodeError) as exc:
        return _unusable(path, f"cannot be read ({exc})")
    try:
        data = tomllib.loads(text)
        return replace(_parse(data), files=(str(path),))
    except tomllib.TOMLDecodeError as exc:
        return _unusable(path, f"is not valid TOML ({exc})")
    except ValueError as exc:
        return _unusable(path, str(exc))


def _unusable(path: Path, why: str) -> SitePolicy:
    fallback = (
        f"{FALLBACK.floor_seconds:g} s floor, {FALLBACK.action_floor_seconds:g} s after an "
        f"action, {FALLBACK.queries_per_hour} Slurm commands an hour"
    )
    return replace(
        FALLBACK,
        files=(str(path),),
        warnings=(f"site policy {path} {why}; using the built-in policy ({fallback})",),
    )


def _parse(data: dict[str, Any]) -> SitePolicy:
    unknown = sorted(set(data) - {"slurm"})
    if unknown:
        raise ValueError(f"has an unknown table or key {unknown[0]!r} (expected [slurm])")
    table = data.get("slurm", {})
    if not isinstance(table, dict):
        raise ValueError("[slurm] must be a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KEYS:
            raise ValueError(f"[slurm] has an unknown key {key!r} (known: {', '.join(_KEYS)})")
        minimum, whole = _KEYS[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"[slurm] {key} must be a number, got {value!r}")
        if whole and value != int(value):
            raise ValueError(f"[slurm] {key} must be a whole number, got {value!r}")
        if value < minimum:
            raise ValueError(f"[slurm] {key} must be at least {minimum:g}, got {value!r}")
        values[key] = int(value) if whole else float(value)
    return SitePolicy(**values)


def effective_policy(
    *,
    floor_seconds: float,
    action_floor_seconds: float,
    queries_per_hour: int,
    site: SitePolicy,
) -> SlurmPolicy:
    """The user's settings, held to the site's policy (the longer floors, the lower ceiling);
    the action floor never exceeds the regular one."""
    floor = max(floor_seconds, site.floor_seconds or 0.0)
    action = max(action_floor_seconds, site.action_floor_seconds or 0.0)
    queries = min(queries_per_hour, site.queries_per_hour or queries_per_hour)
    return SlurmPolicy(
        floor_seconds=max(floor, action),
        action_floor_seconds=action,
        queries_per_hour=queries,
    )
