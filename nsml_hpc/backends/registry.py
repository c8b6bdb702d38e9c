"""Backend names and how each is built; an unknown name fails with the list of valid ones."""

from __future__ import annotations

from collections.abc import Callable

from nsml_hpc.backends.base import SlurmBackend
from nsml_hpc.backends.cli import CliBackend
from nsml_hpc.errors import ConfigError

_FACTORIES: dict[str, Callable[[str], SlurmBackend]] = {
    "local": lambda cluster: CliBackend(cluster),
}
BACKEND_NAMES = tuple(sorted(_FACTORIES))


def make_backend(name: str, cluster: str) -> SlurmBackend:
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown backend {name!r} for cluster {cluster!r}; valid backends: "
            + ", ".join(BACKEND_NAMES)
        ) from None
    return factory(cluster)
