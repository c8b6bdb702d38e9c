"""Open a catalog: bring its schema to this release's (alembic revisions, see
:mod:`nsml_hpc.catalog.migrations`: a new catalog gets today's tables, an older one is
upgraded in place, a newer one is refused), say who the caller is in it, and fill new derived
tables from old data.

A change to the tables needs a revision in ``catalog/migrations/versions/``; a derived table
filled from older ones adds its fill step to :func:`_fill_new_tables`.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from nsml_hpc.catalog import migrations
from nsml_hpc.catalog.engine import Catalog, connect, first_line, shown_url
from nsml_hpc.catalog.migrations import MODEL_MODULES, SCHEMA_VERSION
from nsml_hpc.catalog.summaries import backfill_summaries
from nsml_hpc.errors import CatalogError, SettingsError


def _fill_new_tables(catalog: Catalog) -> None:
    """On every open: derived tables a newer release added, filled once from old data."""
    backfill_summaries(catalog)


def _row_security(engine: Engine) -> tuple[bool, str | None]:
    """(whether row-level security guards the session table, the database role)."""
    if engine.dialect.name != "postgresql":
        return False, None
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT c.relrowsecurity, current_user FROM pg_class c "
                "WHERE c.oid = to_regclass('session')"
            )
        ).first()
    if row is None:
        return False, None
    return bool(row[0]), str(row[1])


def open_catalog(url: str, *, user: str | None = None) -> Catalog:
    """Open (and create, if new; upgrade, if older) the catalog at ``url``.

    ``user`` is the caller's catalog user (default: the login name). On a catalog with
    row-level security it is the database role, whatever ``user`` says.
    """
    catalog = connect(url)
    engine = catalog.engine
    try:
        if migrations.needs_upgrade(engine):
            try:
                migrations.upgrade(engine)
            except SQLAlchemyError as exc:
                raise migrations.upgrade_error(exc, shown_url(url)) from exc
        secured, role = _row_security(engine)
        catalog = Catalog(engine, catalog.notes, role if secured else user, row_security=secured)
        _fill_new_tables(catalog)
    except SQLAlchemyError as exc:
        catalog.close()
        error = catalog.error(exc)
        if isinstance(error, SettingsError):  # read-only, not a database: one line, exit 2
            raise error from exc
        raise CatalogError(f"cannot open catalog {shown_url(url)}: {first_line(exc)}") from exc
    except BaseException:
        catalog.close()
        raise
    return catalog


__all__ = ["MODEL_MODULES", "SCHEMA_VERSION", "open_catalog"]
