"""``nsml-hpc config``: the effective settings and where each one comes from.

Each setting is taken from its ``NSML_HPC_*`` environment variable if set, else from the
config file if it has the key, else it is the default (:func:`nsml_hpc.config.settings.
load_settings` applies the same order; the values shown are the loaded ones, so what this
prints is what every command uses). The files and folders nsml-hpc reads and writes are
listed too: the config file, the cluster profiles, the data folder, gc's lock and log.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsml_hpc.config import locations
from nsml_hpc.config.settings import ENV_KEYS, Settings
from nsml_hpc.config.settings import KEYS as CONFIG_KEYS

# config.toml key -> its NSML_HPC_* environment override (the settings module's tables: one
# list of keys, also behind its "unknown key ... (did you mean ...)" errors)
KEYS: dict[str, str | None] = {
    key: next((env for env, name in ENV_KEYS.items() if name == key), None) for key in CONFIG_KEYS
}


@dataclass(frozen=True)
class Entry:
    key: str
    value: Any
    source: str  # "env NSML_HPC_X", "config file", "default", or for paths how it is found

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "source": self.source}


def _value(settings: Settings, key: str, data: dict[str, Any]) -> Any:
    if key == "catalog":
        return settings.catalog_url
    if key == "run_root":
        return str(settings.run_root)
    if key == "default_cluster":
        return settings.default_cluster
    if key == "max_code_mb":
        return settings.max_code_bytes / (1024 * 1024)
    if key == "idle_gpu_minutes":
        return settings.idle_gpu_seconds / 60
    if key == "metrics":
        return dict(data.get("metrics", {}))
    if key == "gc":
        return data.get("gc", {})
    if hasattr(settings, key):
        return getattr(settings, key)
    return data.get(key)  # a key read where it is used (not held by Settings)


def explain(settings: Settings, environ: dict[str, str] | None = None) -> list[Entry]:
    """Every setting with its effective value and source, then the paths."""
    env = os.environ if environ is None else environ
    path = locations.config_file()
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            data = {}  # load_settings already refused a broken file
    entries: list[Entry] = []
    for key, variable in KEYS.items():
        if variable and env.get(variable):
            source = f"env {variable}"
        elif key in data:
            source = f"config file {path}"
        else:
            source = "default"
        entries.append(Entry(key, _value(settings, key, data), source))
    config_source = "env NSML_HPC_CONFIG" if env.get("NSML_HPC_CONFIG") else "default"
    exists = "" if path.is_file() else " (does not exist)"
    entries.append(Entry("config_file", str(path), config_source + exists))
    clusters = locations.clusters_file()
    clusters_source = (
        "env NSML_HPC_CLUSTERS" if env.get("NSML_HPC_CLUSTERS") else "beside the config file"
    )
    entries.append(Entry("clusters_file", str(clusters), clusters_source))
    entries.append(
        Entry(
            "clusters", settings.cluster_names(), f"{clusters}" if settings.clusters else "default"
        )
    )
    data_dir = locations.data_dir()
    xdg = "env XDG_DATA_HOME" if env.get("XDG_DATA_HOME") else "default"
    entries.append(Entry("data_dir", str(data_dir), xdg))
    from nsml_hpc.snapshots.gc import default_log_file, gc_lock_path

    entries.append(Entry("gc_lock", str(gc_lock_path(settings.catalog_url)), "next to the catalog"))
    gc_table = data.get("gc", {})
    log_file = gc_table.get("log_file") if isinstance(gc_table, dict) else None
    entries.append(
        Entry(
            "gc_log",
            str(Path(log_file).expanduser())
            if isinstance(log_file, str)
            else str(default_log_file()),
            f"config file {path} [gc] log_file" if isinstance(log_file, str) else "the data folder",
        )
    )
    from nsml_hpc.logs import ENV as LOG_ENV

    entries.append(
        Entry(
            "log_level",
            env.get(LOG_ENV) or "off",
            f"env {LOG_ENV}" if env.get(LOG_ENV) else "default",
        )
    )
    return entries


__all__ = ["KEYS", "Entry", "explain"]
