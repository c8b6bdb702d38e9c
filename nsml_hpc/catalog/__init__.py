"""The catalog: SQLModel tables and the queries the CLI, sync and TUI share.

Importing the package loads nothing (SQLAlchemy neither): :mod:`nsml_hpc.catalog.quickread`,
the login node's read-only fast path, lives here without it. ``Catalog``, ``open_catalog`` and
``SCHEMA_VERSION`` load their modules when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nsml_hpc.catalog.engine import Catalog
    from nsml_hpc.catalog.schema import SCHEMA_VERSION, open_catalog


def __getattr__(name: str) -> Any:
    if name == "Catalog":
        from nsml_hpc.catalog.engine import Catalog

        return Catalog
    if name in ("SCHEMA_VERSION", "open_catalog"):
        from nsml_hpc.catalog import schema

        return getattr(schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SCHEMA_VERSION", "Catalog", "open_catalog"]
