"""Backend names and how each is built from a cluster profile; an unknown name fails with the
list of valid ones. Nothing connects here: a backend opens its connection on first use."""

from __future__ import annotations

from collections.abc import Callable

from nsml_hpc.backends.base import PassphrasePrompt, SlurmBackend
from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.errors import ConfigError, ConnectionFailed

Factory = Callable[[ClusterProfile, PassphrasePrompt | None], SlurmBackend]


def _local(profile: ClusterProfile, _prompt: PassphrasePrompt | None) -> SlurmBackend:
    """Slurm's commands here; with ``slurm_conf``, every one of them gets that SLURM_CONF."""
    return CliBackend(profile.name, slurm_conf=profile.slurm_conf)


def _ssh(profile: ClusterProfile, prompt: PassphrasePrompt | None) -> SlurmBackend:
    from nsml_hpc.backends.ssh import make_ssh_backend

    return make_ssh_backend(profile, passphrase_prompt=prompt)


def _pyslurm(profile: ClusterProfile, _prompt: PassphrasePrompt | None) -> SlurmBackend:
    from nsml_hpc.backends.pyslurm_backend import PyslurmBackend

    return PyslurmBackend(profile.name)


def _auto(profile: ClusterProfile, prompt: PassphrasePrompt | None) -> SlurmBackend:
    """pyslurm when one matching the running Slurm is installed, else Slurm's commands."""
    from nsml_hpc.backends.pyslurm_backend import pyslurm_matches

    return (_pyslurm if pyslurm_matches() else _local)(profile, prompt)


_FACTORIES: dict[str, Factory] = {
    "auto": _auto,
    "local": _local,
    "pyslurm": _pyslurm,
    "ssh": _ssh,
}
BACKEND_NAMES = tuple(sorted(_FACTORIES))


def make_backend(
    profile: ClusterProfile, *, passphrase_prompt: PassphrasePrompt | None = None
) -> SlurmBackend:
    try:
        factory = _FACTORIES[profile.backend]
    except KeyError:
        raise ConfigError(
            f"unknown backend {profile.backend!r} for cluster {profile.name!r}; valid backends: "
            + ", ".join(BACKEND_NAMES)
        ) from None
    return factory(profile, passphrase_prompt)


def backend_choice(profile: ClusterProfile) -> str | None:
    """What ``cluster add`` says about the backend of ``profile``: for ``pyslurm``, the
    installed pyslurm and the running Slurm (a pyslurm that cannot drive this Slurm is refused
    with :class:`~nsml_hpc.errors.ConnectionFailed` naming both versions, before anything is
    saved); for ``auto``, which backend it will use and why."""
    if profile.backend not in ("pyslurm", "auto"):
        return None
    from nsml_hpc.backends.pyslurm_loader import (
        installed_pyslurm_version,
        load_pyslurm,
        running_slurm_version,
        version_problem,
    )

    try:
        _module, version = load_pyslurm(profile.name)
    except ConnectionFailed as exc:
        if profile.backend == "pyslurm":
            raise
        why = version_problem(installed_pyslurm_version(), running_slurm_version()) or str(exc)
        return f"auto uses the local backend here: {why}"
    chosen = "auto uses pyslurm here" if profile.backend == "auto" else "pyslurm"
    return f"{chosen}: pyslurm {version} matches Slurm {running_slurm_version()}"
