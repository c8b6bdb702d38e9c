"""The front end's handles, opened once per command (or once per TUI): settings, the catalog,
and a backend per cluster. CLI and TUI both start here.

Backends are built from cluster profiles on first use and kept for the workspace's life, so a
command or a sync uses ONE connection per remote cluster for everything it does;
:meth:`Workspace.close` closes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nsml_hpc.backends.base import PassphrasePrompt, SlurmBackend
from nsml_hpc.backends.registry import make_backend
from nsml_hpc.catalog.engine import Catalog, open_catalog
from nsml_hpc.settings import Settings, load_settings


@dataclass
class Workspace:
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
    ) -> Workspace:
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
