"""Backend names and how each is built from a cluster profile; an unknown name fails with the
list of valid ones. Nothing connects here: a backend opens its connection on first use."""

from __future__ import annotations

from collections.abc import Callable

from nsml_hpc.backends.base import PassphrasePrompt, SlurmBackend
from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.errors import ConfigError

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
