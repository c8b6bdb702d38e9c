"""Open a catalog: create the tables of every model module, check the schema version that
later releases migrate from, and fill new derived tables from old data.

A feature with tables of its own adds its model module to the imports here (new tables need
no migration) and, if its tables are derived from older ones, its fill step to
:func:`_fill_new_tables`.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel, select

# Every module that defines tables, imported so that create_all makes them all.
from nsml_hpc.catalog import allocations, cluster_models, snapshot_models, summary_models
from nsml_hpc.catalog.engine import Catalog, connect, first_line, shown_url
from nsml_hpc.catalog.models import CatalogMeta
from nsml_hpc.catalog.summaries import backfill_summaries
from nsml_hpc.errors import CatalogError, SettingsError

SCHEMA_VERSION = 1
MODEL_MODULES = (allocations, cluster_models, snapshot_models, summary_models)  # and .models


def _fill_new_tables(catalog: Catalog) -> None:
    """On every open: derived tables a newer release added, filled once from old data."""
    backfill_summaries(catalog)


def _ensure_schema(catalog: Catalog) -> None:
    SQLModel.metadata.create_all(catalog.engine)
    with catalog.session() as db:
        row = db.exec(select(CatalogMeta).where(CatalogMeta.key == "schema_version")).first()
        if row is None:
            db.add(CatalogMeta(key="schema_version", value=str(SCHEMA_VERSION)))
        elif int(row.value) > SCHEMA_VERSION:
            raise CatalogError(
                f"the catalog has schema version {row.value}, newer than this nsml-hpc "
                f"understands ({SCHEMA_VERSION}); upgrade nsml-hpc"
            )
        # Older versions are migrated here, one step at a time, when there are any.
    _fill_new_tables(catalog)


def open_catalog(url: str) -> Catalog:
    """Open (and create, if new) the catalog at ``url``."""
    catalog = connect(url)
    try:
        _ensure_schema(catalog)
    except SQLAlchemyError as exc:
        catalog.close()
        error = catalog.error(exc)
        if isinstance(error, SettingsError):  # read-only, not a database: one line, exit 2
            raise error from exc
        raise CatalogError(f"cannot open catalog {shown_url(url)}: {first_line(exc)}") from exc
    except CatalogError:
        catalog.close()
        raise
    return catalog
