"""The catalog handle: the engine (SQLite with WAL and a busy timeout, or any SQLAlchemy URL)
and :class:`Catalog`, the unit of work every catalog module takes. Opening one (the tables,
the schema version) is :mod:`nsml_hpc.catalog.schema`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import Session, create_engine

from nsml_hpc.catalog.models import CatalogMeta
from nsml_hpc.errors import CatalogError

BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise CatalogError(f"invalid catalog URL {url!r}: {exc}") from exc
    logging.getLogger(__name__).info("catalog %s", parsed.render_as_string(hide_password=True))
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
