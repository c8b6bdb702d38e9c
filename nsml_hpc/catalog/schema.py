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
from nsml_hpc.catalog import clock_models, cluster_models, snapshot_models, summary_models
from nsml_hpc.catalog.engine import Catalog, make_engine
from nsml_hpc.catalog.models import CatalogMeta
from nsml_hpc.catalog.summaries import backfill_summaries
from nsml_hpc.errors import CatalogError

SCHEMA_VERSION = 1
MODEL_MODULES = (
    clock_models,
    cluster_models,
    snapshot_models,
    summary_models,
)  # and catalog.models


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
    catalog = Catalog(make_engine(url))
    try:
        _ensure_schema(catalog)
    except SQLAlchemyError as exc:
        catalog.close()
        raise CatalogError(f"cannot open catalog: {exc}") from exc
    return catalog
