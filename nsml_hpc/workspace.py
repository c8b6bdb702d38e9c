"""The front end's handles, opened once per command (or once per TUI): settings, the catalog,
and a backend per cluster. CLI and TUI both start here."""

from __future__ import annotations

from dataclasses import dataclass, field

from nsml_hpc.backends.base import SlurmBackend
from nsml_hpc.backends.registry import make_backend
from nsml_hpc.catalog.engine import Catalog, open_catalog
from nsml_hpc.settings import Settings, load_settings


@dataclass
class Workspace:
    settings: Settings
    catalog: Catalog
    _backends: dict[str, SlurmBackend] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings | None = None) -> Workspace:
        settings = settings or load_settings()
        return cls(settings=settings, catalog=open_catalog(settings.catalog_url))

    def backend_for(self, cluster: str) -> SlurmBackend:
        """The backend of ``cluster``, built once per workspace (one connection per command)."""
        if cluster not in self._backends:
            self._backends[cluster] = make_backend("local", cluster)
        return self._backends[cluster]

    def use_backend(self, cluster: str, backend: SlurmBackend) -> None:
        """Put a ready backend in place (tests count commands through a wrapping runner)."""
        self._backends[cluster] = backend

    def close(self) -> None:
        self.catalog.close()
