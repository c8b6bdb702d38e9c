"""What every front-end operation works with: settings, the catalog, and a backend per cluster.

The feature packages take a :class:`Context`; the CLI and the TUI hold a
:class:`nsml_hpc.workspace.Workspace`, which is a context with the users' operations on it.

Backends are built from cluster profiles on first use and kept for the context's life, so a
command or a sync uses ONE connection per remote cluster for everything it does;
:meth:`Context.close` (or leaving a ``with`` block) closes them and the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from nsml_hpc.backends.base import PassphrasePrompt, SlurmBackend
    from nsml_hpc.catalog.engine import Catalog
    from nsml_hpc.config.cluster_profiles import ClusterProfile
    from nsml_hpc.config.settings import Settings


def make_backend(
    profile: ClusterProfile, *, passphrase_prompt: PassphrasePrompt | None = None
) -> SlurmBackend:
    """The backend of a cluster profile (the registry is imported on first use: reading the
    catalog on the login node's fast path needs no backend)."""
    from nsml_hpc.backends.registry import make_backend as make

    return make(profile, passphrase_prompt=passphrase_prompt)


@dataclass
class Context:
    settings: Settings
    catalog: Catalog
    passphrase_prompt: PassphrasePrompt | None = None
    _backends: dict[str, SlurmBackend] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        passphrase_prompt: PassphrasePrompt | None = None,
    ) -> Self:
        from nsml_hpc.catalog.schema import open_catalog
        from nsml_hpc.config.settings import load_settings

        settings = settings or load_settings()
        return cls(
            settings=settings,
            catalog=open_catalog(settings.catalog_url),
            passphrase_prompt=passphrase_prompt,
        )

    def backend_for(self, cluster: str) -> SlurmBackend:
        """The backend of ``cluster``, built once per workspace (one connection per command)."""
        if cluster not in self._backends:
            profile = self.settings.profile(cluster)
            self._backends[cluster] = make_backend(
                profile, passphrase_prompt=self.passphrase_prompt
            )
        return self._backends[cluster]

    def use_backend(self, cluster: str, backend: SlurmBackend) -> None:
        """Put a ready backend in place (tests count commands through a wrapping runner)."""
        self._backends[cluster] = backend

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
        self.catalog.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
