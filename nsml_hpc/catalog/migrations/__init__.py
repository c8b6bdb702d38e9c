"""Schema migrations of the catalog, with alembic (revisions in ``versions/``).

Every open checks the stored revision (one small query) and, when it is behind, upgrades the
catalog to :data:`HEAD` in ONE transaction, serialised between processes (PostgreSQL: an
advisory lock; SQLite: ``BEGIN IMMEDIATE``, foreign keys off while tables are rebuilt, then
``PRAGMA foreign_key_check``). A catalog made before migrations existed (schema version 1,
no ``alembic_version`` table) is stamped with the baseline revision first, so its data is
upgraded, never recreated.

A change to the tables (a column, a table, an index) needs a revision here:
tests/catalog/test_migrations.py compares the upgraded schema with the models and fails
until the revision exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event, inspect, make_url, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel, create_engine

from nsml_hpc.catalog import (
    allocations,
    clock_models,
    cluster_models,
    dataset_models,
    models,
    snapshot_models,
    summary_models,
    team_models,
)
from nsml_hpc.errors import CatalogError

HEAD = "0006_retired_number"
SCHEMA_VERSION = 2  # catalog_meta's number, which nsml-hpc 0.1 (no migrations) checks
BASELINE = "0001_baseline"
KNOWN = (
    BASELINE,
    "0002_teams",
    "0003_job_allocation",
    "0004_issue12_tables",
    "0005_slurm_clock",
    HEAD,
)
HERE = Path(__file__).resolve().parent
VERSION_KEY = "schema_version"
# catalog.summaries' mark that the summaries of older points are filled (none in a new one):
# set here, so that team members, who may not write catalog_meta, never need to.
SUMMARIES_KEY = "metric_summary_filled"
ADVISORY_LOCK = 0x6E736D6C  # "nsml": serialises upgrades of one PostgreSQL database
BUSY_TIMEOUT_S = 30.0

# Modules that define tables (the models the newest revision must match).
MODEL_MODULES = (
    models,
    snapshot_models,
    summary_models,
    cluster_models,
    team_models,
    allocations,
    dataset_models,
    clock_models,
)


def target_metadata() -> MetaData:
    """Every table of the current models."""
    return SQLModel.metadata


def stored_revision(conn: Connection) -> str | None:
    """The catalog's alembic revision; None for an empty or pre-migration catalog."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(value) if value is not None else None


def _legacy_version(conn: Connection) -> int | None:
    """``catalog_meta.schema_version`` of a catalog made before migrations existed."""
    if not inspect(conn).has_table("catalog_meta"):
        return None
    value = conn.execute(
        text("SELECT value FROM catalog_meta WHERE key = 'schema_version'")
    ).scalar()
    return int(value) if value is not None else 1


def _newer(found: object) -> CatalogError:
    return CatalogError(
        f"the catalog has schema revision {found}, newer than this nsml-hpc understands "
        f"({HEAD}); upgrade nsml-hpc"
    )


def _config(conn: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = conn
    return config


def _sqlite_begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_setup(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we say BEGIN ourselves: DDL is transactional
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=OFF")  # rebuilding `session` must not cascade
    cursor.close()


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """One transaction that holds the catalog exclusively until it commits."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                yield conn
                return
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
            yield conn
        return
    own = create_engine(
        make_url(str(engine.url.render_as_string(hide_password=False))),
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
    )
    event.listen(own, "connect", _sqlite_setup)
    event.listen(own, "begin", _sqlite_begin_immediate)
    try:
        with own.begin() as conn:
            yield conn
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise CatalogError(f"the upgrade left broken references: {broken[:5]}")
    finally:
        own.dispose()


def needs_upgrade(engine: Engine) -> bool:
    """True unless the catalog is at :data:`HEAD` (raises if it is newer)."""
    with engine.connect() as conn:
        revision = stored_revision(conn)
    if revision == HEAD:
        return False
    if revision is not None and revision not in KNOWN:
        raise _newer(revision)
    return True


def upgrade(engine: Engine) -> list[str]:
    """Bring the catalog to :data:`HEAD`; returns the revisions applied (none if another
    process did it first). An empty database gets every table."""
    from alembic import command

    with _migration_connection(engine) as conn:
        before = stored_revision(conn)
        if before == HEAD:
            return []
        if before is None:
            legacy = _legacy_version(conn)
            if legacy is None:  # a new catalog: today's tables at once, stamped as HEAD
                target_metadata().create_all(conn)
                for key, value in ((VERSION_KEY, str(SCHEMA_VERSION)), (SUMMARIES_KEY, "1")):
                    conn.execute(
                        text("INSERT INTO catalog_meta (key, value) VALUES (:k, :v)"),
                        {"k": key, "v": value},
                    )
                command.stamp(_config(conn), HEAD)
                return [HEAD]
            if legacy > 1:
                raise _newer(f"version {legacy}")
            command.stamp(_config(conn), BASELINE)
            before = BASELINE
        elif before not in KNOWN:
            raise _newer(before)
        command.upgrade(_config(conn), HEAD)
    start = KNOWN.index(before) + 1 if before in KNOWN else 0
    return list(KNOWN[start:])


def upgrade_error(exc: SQLAlchemyError, url: str) -> CatalogError:
    """A failed upgrade as one line: a role without the right to change the tables is told
    who can."""
    text_ = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    if "permission denied" in text_ or "must be owner" in text_:
        return CatalogError(
            f"the catalog needs a schema upgrade to {HEAD} and this database role may not "
            f"change its tables ({text_}); the team's admin runs: "
            "nsml-hpc catalog upgrade --admin-url URL"
        )
    return CatalogError(f"cannot upgrade the catalog {url}: {text_}")


__all__ = [
    "BASELINE",
    "HEAD",
    "MODEL_MODULES",
    "SCHEMA_VERSION",
    "needs_upgrade",
    "target_metadata",
    "upgrade",
    "upgrade_error",
]
