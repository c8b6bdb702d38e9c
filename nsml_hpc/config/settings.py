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
default_cluster = "local"     # the cluster of commands that name none (--cluster NAME)
idle_gpu_minutes = 60         # ps flags sessions whose GPUs sat at 0 % this long

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
``NSML_HPC_SYNC_INTERVAL``, ``NSML_HPC_KEY_METRIC``, ``NSML_HPC_SLURM_FLOOR``,
``NSML_HPC_SLURM_QUERIES``.

The site's policy (:mod:`nsml_hpc.config.site_policy`, ``/etc/nsml-hpc/site.toml``) holds the
three Slurm settings to its floors and ceiling: user config cannot loosen it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsml_hpc.config import locations
from nsml_hpc.config.cluster_profiles import LOCAL, ClusterProfile, implicit_local
from nsml_hpc.config.clusters_file import load_profiles
from nsml_hpc.config.site_policy import SitePolicy, SlurmPolicy, effective_policy, load_site_policy
from nsml_hpc.errors import ConfigError, NotFoundError
from nsml_hpc.job.direction import NO_OVERRIDES, Directions, Goal, parse_goal
from nsml_hpc.job.layout import RUN_ROOT_ENV

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
        raise NotFoundError(
            f"unknown cluster {name!r}; configured: {', '.join(self.cluster_names())} "
            "(add one with: nsml-hpc cluster add NAME ...)"
        )

    idle_gpu_seconds: float = 3600.0  # flag sessions whose GPUs sat at 0 % this long
    sync_interval_seconds: float = 1.0  # the file clock of a live view
    key_metric: str | None = None
    metric_directions: Directions = NO_OVERRIDES
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


def _number(name: str, value: Any, minimum: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value!r}")
    return number


def metric_directions(data: dict[str, Any]) -> Directions:
    """The ``[metrics]`` table of a config file: ``NAME = "min" | "max"``."""
    table = data.get("metrics", {})
    if not isinstance(table, dict):
        raise ConfigError('[metrics] must be a table of NAME = "min" or "max"')
    goals: dict[str, Goal] = {}
    for name, value in table.items():
        goal = parse_goal(value)
        if goal is None:
            hint = ' (quote a name with dots: "val.fid" = ...)' if isinstance(value, dict) else ""
            raise ConfigError(
                f'[metrics] {name}: the direction must be "min" or "max", got {value!r}{hint}'
            )
        if not name.strip():
            raise ConfigError("[metrics]: a metric name must not be empty")
        goals[name] = goal
    return Directions.of(goals)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    path = locations.config_file()
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    catalog = env.get("NSML_HPC_CATALOG") or data.get("catalog") or locations.default_catalog_url()
    run_root = env.get(RUN_ROOT_ENV) or data.get("run_root")
    floor = env.get("NSML_HPC_POLL_FLOOR") or data.get("poll_floor_seconds", 5.0)
    grace = env.get("NSML_HPC_SUBMIT_GRACE") or data.get("submit_grace_seconds", 60.0)
    max_code_mb = data.get("max_code_mb", 100)
    clusters = load_profiles()
    default_cluster = str(env.get("NSML_HPC_CLUSTER") or data.get("default_cluster") or LOCAL)
    if default_cluster != LOCAL and default_cluster not in clusters:
        raise ConfigError(
            f"default cluster {default_cluster!r} has no profile; configured: "
            + ", ".join(sorted({LOCAL, *clusters}))
        )
    idle_minutes = data.get("idle_gpu_minutes", 60)
    interval = env.get("NSML_HPC_SYNC_INTERVAL") or data.get("sync_interval_seconds", 1.0)
    slurm_floor = env.get("NSML_HPC_SLURM_FLOOR") or data.get("slurm_floor_seconds", 60.0)
    queries = env.get("NSML_HPC_SLURM_QUERIES") or data.get("slurm_queries_per_hour", 60)
    key_metric = env.get("NSML_HPC_KEY_METRIC") or data.get("key_metric")
    if key_metric is not None and (not isinstance(key_metric, str) or not key_metric.strip()):
        raise ConfigError(f"key_metric must be a metric name, got {key_metric!r}")
    poll_floor = _number("poll_floor_seconds", floor, MIN_POLL_FLOOR)
    site = load_site_policy(env)
    policy = effective_policy(
        floor_seconds=_number("slurm_floor_seconds", slurm_floor, MIN_POLL_FLOOR),
        action_floor_seconds=poll_floor,
        queries_per_hour=int(_number("slurm_queries_per_hour", queries, MIN_SLURM_QUERIES)),
        site=site,
    )
    return Settings(
        catalog_url=str(catalog),
        run_root=Path(run_root).expanduser() if run_root else locations.default_run_root(),
        poll_floor_seconds=policy.action_floor_seconds,
        submit_grace_seconds=_number("submit_grace_seconds", grace, 0.0),
        max_code_bytes=int(_number("max_code_mb", max_code_mb, 0.001) * 1024 * 1024),
        clusters=clusters,
        default_cluster=default_cluster,
        idle_gpu_seconds=_number("idle_gpu_minutes", idle_minutes, 0.0) * 60,
        sync_interval_seconds=_number("sync_interval_seconds", interval, MIN_POLL_FLOOR),
        key_metric=key_metric.strip() if key_metric else None,
        metric_directions=metric_directions(data),
        slurm_floor_seconds=policy.floor_seconds,
        slurm_queries_per_hour=policy.queries_per_hour,
        site=site,
    )
