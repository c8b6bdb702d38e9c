"""Open a catalog: the engine (SQLite with WAL and a busy timeout, or any SQLAlchemy URL),
the tables, and the schema version that later releases migrate from."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import Session, SQLModel, create_engine, select

from nsml_hpc.catalog.models import CatalogMeta
from nsml_hpc.errors import CatalogError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise CatalogError(f"invalid catalog URL {url!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except (ImportError, SQLAlchemyError) as exc:
        raise CatalogError(f"cannot use catalog {parsed.render_as_string()}: {exc}") from exc


class Catalog:
    """An open catalog. Only the front end writes to it (jobs never do)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        with Session(self.engine, expire_on_commit=False) as db:
            try:
                yield db
                db.commit()
            except SQLAlchemyError as exc:
                db.rollback()
                raise CatalogError(f"catalog error: {exc.__class__.__name__}: {exc}") from exc
            except BaseException:
                db.rollback()
                raise

    def schema_version(self) -> int:
        with self.session() as db:
            row = db.get(CatalogMeta, "schema_version")
            return int(row.value) if row else 0

    def close(self) -> None:
        self.engine.dispose()


# Modules that define tables: imported before create_all so every table exists. A feature
# with tables of its own adds its module here (new tables need no migration). A module may
# define ``after_create(catalog)``, called on every open to fill its new tables from old data.
MODEL_MODULES = (
    "nsml_hpc.catalog.models",
    "nsml_hpc.catalog.snapshot_models",
    "nsml_hpc.catalog.summary_models",
    "nsml_hpc.catalog.cluster_models",
    "nsml_hpc.catalog.allocations",
)


def _ensure_schema(catalog: Catalog) -> None:
    modules = [importlib.import_module(module) for module in MODEL_MODULES]
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
    for module in modules:
        after_create = getattr(module, "after_create", None)
        if after_create is not None:
            after_create(catalog)


def open_catalog(url: str) -> Catalog:
    """Open (and create, if new) the catalog at ``url``."""
    catalog = Catalog(_make_engine(url))
    try:
        _ensure_schema(catalog)
    except SQLAlchemyError as exc:
        catalog.close()
        raise CatalogError(f"cannot open catalog: {exc}") from exc
    return catalog
