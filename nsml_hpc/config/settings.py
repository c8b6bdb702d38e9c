"""User settings: the TOML config file, overridden by ``NSML_HPC_*`` environment variables.

```toml
catalog = "postgresql+psycopg://team@db/nsml"   # default: SQLite under the XDG data dir
run_root = "/shared/home/me/nsml-runs"
poll_floor_seconds = 5        # never ask Slurm more often than this, whoever asks (even
                              # right after a submit, stop or explicit refresh)
slurm_floor_seconds = 60      # the Slurm clock: sessions that need Slurm (waiting, silent,
                              # unconfirmed) are asked about this often; running ones with a
                              # live wrapper 4x less (what job wrappers write shows without it)
slurm_queries_per_hour = 60   # at most this many Slurm commands per cluster in any hour
sync_interval_seconds = 1     # the file clock: how often an open TUI reads run directories
key_metric = "val_loss"       # the metric the TUI's session table shows (default: guessed)
submit_grace_seconds = 60     # a fresh job missing from sacct is not lost before this
max_code_mb = 100             # size guard for the code snapshot
max_dataset_gb = 100          # size guard for `dataset push`
capture_stdout = false        # submit --capture-stdout by default (metrics printed to the output)
default_cluster = "local"     # the cluster of commands that name none (--cluster NAME)
idle_gpu_minutes = 60         # ps flags sessions whose GPUs sat at 0 % this long
run_dir_mode = "group"        # who may read your run directories: private | group | world
                              # (default: your umask decides, as for any file you make)

[metrics]                     # which way is better, where the name alone misleads
fid = "min"                   # a word: val/fid, test_fid too ("min" or "max")
"val/score" = "min"           # an exact name (quote names with / or .)
```

Without an entry, a metric's direction follows the words of its name
(:mod:`nsml_hpc.job.direction`: ``val_loss`` min, ``val_acc`` max); ``best:M:min|max`` and
``M:min|max`` override both where a metric is named.

Cluster profiles live in ``clusters.toml`` beside this file (:mod:`nsml_hpc.config.clusters_file`);
``local`` (Slurm's commands on this machine) exists without one. Environment overrides:
``NSML_HPC_CATALOG``, ``NSML_HPC_RUN_ROOT``, ``NSML_HPC_POLL_FLOOR``, ``NSML_HPC_SUBMIT_GRACE``,
``NSML_HPC_CLUSTER`` (default cluster), ``NSML_HPC_CLUSTERS`` (profiles file),
``NSML_HPC_SSH_CONFIG`` (OpenSSH config file, default ``~/.ssh/config``),
``NSML_HPC_SYNC_INTERVAL``, ``NSML_HPC_KEY_METRIC``, ``NSML_HPC_MAX_DATASET_GB``,
``NSML_HPC_SLURM_FLOOR``, ``NSML_HPC_SLURM_QUERIES``.

The site's policy (:mod:`nsml_hpc.config.site_policy`, ``/etc/nsml-hpc/site.toml``) holds the
three Slurm settings to its floors and ceiling: user config cannot loosen it.

A config file whose catalog URL holds a password must be readable by its owner only (as ssh
insists for a private key): one readable by group or others is refused, naming the fix.

Mistakes are errors, never silently ignored (:class:`~nsml_hpc.errors.SettingsError`, exit 2):
an ``NSML_HPC_CONFIG`` naming a file that does not exist, a file that cannot be read or is not
TOML, an unknown key (with the closest known one), a value of the wrong kind.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsml_hpc.config import locations
from nsml_hpc.config.cluster_profiles import LOCAL, ClusterProfile, implicit_local
from nsml_hpc.config.clusters_file import load_profiles
from nsml_hpc.config.site_policy import SitePolicy, SlurmPolicy, effective_policy, load_site_policy
from nsml_hpc.errors import NotFoundError, SettingsError
from nsml_hpc.job.direction import NO_OVERRIDES, Directions, Goal, parse_goal
from nsml_hpc.job.layout import RUN_ROOT_ENV
from nsml_hpc.job.permissions import RUN_DIR_MODES

MIN_POLL_FLOOR = 0.5
MIN_SLURM_QUERIES = 2  # one sacct and one squeue


@dataclass(frozen=True)
class Settings:
    catalog_url: str
    run_root: Path
    poll_floor_seconds: float = 5.0
    submit_grace_seconds: float = 60.0
    max_code_bytes: int = 100 * 1024 * 1024
    clusters: dict[str, ClusterProfile] = field(default_factory=dict)
    default_cluster: str = LOCAL

    def cluster_names(self) -> list[str]:
        """Every configured cluster, ``local`` included."""
        return sorted({LOCAL, *self.clusters})

    def profile(self, name: str) -> ClusterProfile:
        """The profile of cluster ``name``; NotFoundError naming the configured ones."""
        if name in self.clusters:
            return self.clusters[name]
        if name == LOCAL:
            return implicit_local()
        from nsml_hpc.suggest import did_you_mean

        raise NotFoundError(
            f"unknown cluster {name!r}{did_you_mean(name, self.cluster_names())}; configured: "
            f"{', '.join(self.cluster_names())} (add one with: nsml-hpc cluster add NAME ...)"
        )

    idle_gpu_seconds: float = 3600.0  # flag sessions whose GPUs sat at 0 % this long
    sync_interval_seconds: float = 1.0  # the file clock of a live view
    key_metric: str | None = None
    metric_directions: Directions = NO_OVERRIDES
    run_dir_mode: str | None = None  # private | group | world; None: the umask decides
    max_dataset_bytes: int = 100 * 1024**3
    capture_stdout: bool = False  # the default of submit --capture-stdout
    slurm_floor_seconds: float = 60.0  # the Slurm clock (see nsml_hpc.sync.clocks)
    slurm_queries_per_hour: int = 60
    site: SitePolicy = field(default_factory=SitePolicy)

    @property
    def slurm_policy(self) -> SlurmPolicy:
        """The Slurm clock these settings ask for, held to the site's policy."""
        return effective_policy(
            floor_seconds=self.slurm_floor_seconds,
            action_floor_seconds=self.poll_floor_seconds,
            queries_per_hour=self.slurm_queries_per_hour,
            site=self.site,
        )


# Every top-level key of config.toml and the kind of value it takes ("gc" is the retention
# policy table, checked by nsml_hpc.snapshots.retention; "metrics" the metric directions).
NUMBER = "a number"
TEXT = "a string"
TABLE = "a table"
KEYS: dict[str, str] = {
    "catalog": TEXT,
    "run_root": TEXT,
    "poll_floor_seconds": NUMBER,
    "submit_grace_seconds": NUMBER,
    "max_code_mb": NUMBER,
    "default_cluster": TEXT,
    "idle_gpu_minutes": NUMBER,
    "sync_interval_seconds": NUMBER,
    "slurm_floor_seconds": NUMBER,
    "slurm_queries_per_hour": NUMBER,
    "key_metric": TEXT,
    "run_dir_mode": TEXT,
    "max_dataset_gb": NUMBER,
    "capture_stdout": "a boolean",
    "gc": TABLE,
    "metrics": TABLE,
}
ENV_KEYS = {
    "NSML_HPC_CATALOG": "catalog",
    RUN_ROOT_ENV: "run_root",
    "NSML_HPC_POLL_FLOOR": "poll_floor_seconds",
    "NSML_HPC_SUBMIT_GRACE": "submit_grace_seconds",
    "NSML_HPC_CLUSTER": "default_cluster",
    "NSML_HPC_SYNC_INTERVAL": "sync_interval_seconds",
    "NSML_HPC_SLURM_FLOOR": "slurm_floor_seconds",
    "NSML_HPC_SLURM_QUERIES": "slurm_queries_per_hour",
    "NSML_HPC_KEY_METRIC": "key_metric",
    "NSML_HPC_MAX_DATASET_GB": "max_dataset_gb",
}


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return TEXT
    if isinstance(value, dict):
        return TABLE
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


def unknown_key_message(key: str) -> str:
    """``unknown key 'run_rot' (did you mean 'run_root'?)``."""
    from nsml_hpc.suggest import close_matches  # the one "did you mean" helper

    close = close_matches(key, KEYS, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(KEYS))}"
    return f"unknown key {key!r} ({hint})"


def check_config(path: Path, data: dict[str, Any]) -> None:
    """Unknown keys and values of the wrong kind, one SettingsError naming the file."""
    for key, value in data.items():
        if key not in KEYS:
            raise SettingsError(f"config file {path}: {unknown_key_message(key)}")
        kind = _kind_of(value)
        if kind != KEYS[key]:
            raise SettingsError(
                f"config file {path}: {key} must be {KEYS[key]}, got {kind} ({value!r})"
            )


def read_config(path: Path, *, named: bool) -> dict[str, Any]:
    """The config file's table; ``{}`` for a default path that does not exist. A file named by
    ``NSML_HPC_CONFIG`` (``named``) must exist."""
    origin = " (NSML_HPC_CONFIG)" if named else ""
    if path.is_dir():
        raise SettingsError(f"config file {path}{origin} is a folder, not a TOML file")
    if not path.exists():
        if named:
            raise SettingsError(
                f"config file {path}{origin} does not exist (create it, or unset "
                "NSML_HPC_CONFIG to use the default one)"
            )
        return {}
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise SettingsError(f"cannot read config file {path}{origin}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(f"config file {path}{origin} is not UTF-8 text ({exc.reason})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path}{origin} is not valid TOML: {exc}") from exc
    check_config(path, data)
    return data


def metric_directions(data: dict[str, Any]) -> Directions:
    """The ``[metrics]`` table of a config file: ``NAME = "min" | "max"``."""
    table = data.get("metrics", {})
    if not isinstance(table, dict):
        raise SettingsError('[metrics] must be a table of NAME = "min" or "max"')
    goals: dict[str, Goal] = {}
    for name, value in table.items():
        goal = parse_goal(value)
        if goal is None:
            hint = ' (quote a name with dots: "val.fid" = ...)' if isinstance(value, dict) else ""
            raise SettingsError(
                f'[metrics] {name}: the direction must be "min" or "max", got {value!r}{hint}'
            )
        if not name.strip():
            raise SettingsError("[metrics]: a metric name must not be empty")
        goals[name] = goal
    return Directions.of(goals)


class _Source:
    """Where each value came from, for error lines: an environment variable or the file."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env

    def get(self, data: dict[str, Any], key: str, default: Any = None) -> tuple[Any, str]:
        for name, config_key in ENV_KEYS.items():
            if config_key == key and self.env.get(name):
                return self.env[name], name
        return data.get(key, default), f"{key} in config file {self.path}"

    def number(self, data: dict[str, Any], key: str, default: float, minimum: float) -> float:
        value, where = self.get(data, key, default)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SettingsError(f"{where} must be a number, got {value!r}") from None
        if number != number or number < minimum:  # NaN, or too small
            raise SettingsError(f"{where} must be at least {minimum}, got {value!r}")
        return number


def _directions(path: Path, data: dict[str, Any]) -> Directions:
    try:
        return metric_directions(data)
    except SettingsError as exc:
        raise SettingsError(f"config file {path}: {exc}") from exc


def check_password_file(path: Path, url: str) -> None:
    """Refuse a config file that holds a catalog password and that others may read."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        return  # not a URL: opening the catalog reports it
    if not password:
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SettingsError(
            f"{path} holds a catalog password and is readable by others (mode {mode:04o}); "
            f"make it private: chmod 600 {path}"
        )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    path = locations.config_file()
    data = read_config(path, named=bool(env.get("NSML_HPC_CONFIG")))
    if isinstance(data.get("catalog"), str):
        check_password_file(path, data["catalog"])
    source = _Source(path, env)
    catalog = source.get(data, "catalog")[0] or locations.default_catalog_url()
    run_root = source.get(data, "run_root")[0]
    clusters = load_profiles()
    default_cluster, where = source.get(data, "default_cluster")
    default_cluster = str(default_cluster or LOCAL)
    if default_cluster != LOCAL and default_cluster not in clusters:
        raise SettingsError(
            f"{where}: default cluster {default_cluster!r} has no profile; configured: "
            + ", ".join(sorted({LOCAL, *clusters}))
        )
    key_metric, where = source.get(data, "key_metric")
    if key_metric is not None and not key_metric.strip():
        raise SettingsError(f"{where} must be a metric name, got {key_metric!r}")
    run_dir_mode, where = source.get(data, "run_dir_mode")
    if run_dir_mode is not None and run_dir_mode not in RUN_DIR_MODES:
        raise SettingsError(
            f"{where}: run_dir_mode must be one of {', '.join(RUN_DIR_MODES)}, got {run_dir_mode!r}"
        )
    site = load_site_policy(env)
    policy = effective_policy(
        floor_seconds=source.number(data, "slurm_floor_seconds", 60.0, MIN_POLL_FLOOR),
        action_floor_seconds=source.number(data, "poll_floor_seconds", 5.0, MIN_POLL_FLOOR),
        queries_per_hour=int(source.number(data, "slurm_queries_per_hour", 60, MIN_SLURM_QUERIES)),
        site=site,
    )
    return Settings(
        catalog_url=str(catalog),
        run_root=Path(run_root).expanduser() if run_root else locations.default_run_root(),
        poll_floor_seconds=policy.action_floor_seconds,
        submit_grace_seconds=source.number(data, "submit_grace_seconds", 60.0, 0.0),
        max_code_bytes=int(source.number(data, "max_code_mb", 100, 0.001) * 1024 * 1024),
        clusters=clusters,
        default_cluster=default_cluster,
        idle_gpu_seconds=source.number(data, "idle_gpu_minutes", 60, 0.0) * 60,
        sync_interval_seconds=source.number(data, "sync_interval_seconds", 1.0, MIN_POLL_FLOOR),
        key_metric=key_metric.strip() if key_metric else None,
        metric_directions=_directions(path, data),
        run_dir_mode=run_dir_mode,
        max_dataset_bytes=int(source.number(data, "max_dataset_gb", 100, 0.0) * 1024**3),
        capture_stdout=bool(data.get("capture_stdout", False)),
        slurm_floor_seconds=policy.floor_seconds,
        slurm_queries_per_hour=policy.queries_per_hour,
        site=site,
    )
