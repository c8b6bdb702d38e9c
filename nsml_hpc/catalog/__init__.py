"""The catalog: SQLModel tables and the queries the CLI, sync and TUI share."""

from __future__ import annotations

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.schema import SCHEMA_VERSION, open_catalog

__all__ = ["SCHEMA_VERSION", "Catalog", "open_catalog"]
