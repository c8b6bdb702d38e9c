"""Where nsml-hpc keeps its files by default (XDG directories); tests redirect them by env."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "nsml-hpc"


def config_file() -> Path:
    override = os.environ.get("NSML_HPC_CONFIG")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def state_dir() -> Path:
    """Files nsml-hpc keeps between commands that are neither settings nor data (the sync's
    watch lists); ``NSML_HPC_STATE_DIR`` moves it."""
    override = os.environ.get("NSML_HPC_STATE_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_state_dir(APP_NAME))


def default_catalog_url() -> str:
    return f"sqlite:///{data_dir() / 'catalog.db'}"


def default_run_root() -> Path:
    # The home directory is on the shared file system on practically every Slurm cluster.
    return Path.home() / "nsml-runs"


def clusters_file() -> Path:
    """The cluster profiles (``nsml-hpc cluster add`` writes it), beside the config file."""
    override = os.environ.get("NSML_HPC_CLUSTERS")
    if override:
        return Path(override).expanduser()
    return config_file().parent / "clusters.toml"


def ssh_config_file() -> Path:
    """OpenSSH's per-user config, which the SSH backend honours."""
    override = os.environ.get("NSML_HPC_SSH_CONFIG")
    if override:
        return Path(override).expanduser()
    return Path.home() / ".ssh" / "config"


def known_hosts_file() -> Path:
    return Path.home() / ".ssh" / "known_hosts"
