"""Open a catalog: the engine (SQLite with WAL and a busy timeout, or any SQLAlchemy URL),
the schema (upgraded by :mod:`nsml_hpc.catalog.migrations` when behind), and who the caller
is in it (:attr:`Catalog.user`, the owner of the sessions it creates)."""

from __future__ import annotations

import getpass
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import Session, create_engine

from nsml_hpc.catalog import migrations
from nsml_hpc.catalog.migrations import MODEL_MODULES, SCHEMA_VERSION
from nsml_hpc.catalog.models import CatalogMeta
from nsml_hpc.errors import CatalogError, NsmlError, PermissionRefused

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
    """An open catalog. Only the front end writes to it (jobs never do).

    ``user`` is who the caller is in the catalog: the owner of the sessions it creates and
    the one whose sessions its syncs ask Slurm about. ``row_security`` is True on a
    PostgreSQL catalog set up for a team (``nsml-hpc catalog setup-team``), where the
    database itself lets each role change only its own sessions; ``user`` is then the
    database role.
    """

    def __init__(self, engine: Engine, user: str | None = None, *, row_security: bool = False):
        self.engine = engine
        self.user = user or getpass.getuser()
        self.row_security = row_security

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        with Session(self.engine, expire_on_commit=False) as db:
            try:
                yield db
                db.commit()
            except SQLAlchemyError as exc:
                db.rollback()
                raise self.error(exc) from exc
            except BaseException:
                db.rollback()
                raise

    def error(self, exc: SQLAlchemyError) -> NsmlError:
        """A database error as one line: the database refusing a change of someone else's
        rows is PermissionRefused; a catalog the caller cannot write says so."""
        return catalog_error(exc, self.engine)

    def schema_version(self) -> int:
        with self.session() as db:
            row = db.get(CatalogMeta, "schema_version")
            return int(row.value) if row else 0

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()


def _after_open(catalog: Catalog) -> None:
    """A table module may define ``after_create(catalog)``, called on every open to fill its
    tables from older data (cheap when there is nothing to do)."""
    for name in MODEL_MODULES:
        after_create = getattr(importlib.import_module(name), "after_create", None)
        if after_create is not None:
            after_create(catalog)


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
    engine = _make_engine(url)
    try:
        if migrations.needs_upgrade(engine):
            try:
                migrations.upgrade(engine)
            except SQLAlchemyError as exc:
                raise migrations.upgrade_error(exc, _shown(engine)) from exc
        secured, role = _row_security(engine)
        catalog = Catalog(engine, role if secured else user, row_security=secured)
        _after_open(catalog)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise CatalogError(f"cannot open catalog {_shown(engine)}: {_first_line(exc)}") from exc
    except BaseException:
        engine.dispose()
        raise
    return catalog


# What the databases say when a change is not the caller's to make (PostgreSQL row-level
# security and privileges, the triggers of nsml_hpc.catalog.team) or the catalog is read-only.
_REFUSED = ("row-level security", "permission denied", "belongs to")
_READ_ONLY = ("readonly database", "read-only", "unable to open database file")


def catalog_error(exc: SQLAlchemyError, engine: Engine) -> NsmlError:
    message = _first_line(exc)
    lowered = message.lower()
    if any(marker in lowered for marker in _REFUSED):
        return PermissionRefused(f"the catalog refused the change: {message}")
    if any(marker in lowered for marker in _READ_ONLY):
        return CatalogError(
            f"cannot write the catalog {_shown(engine)}: {message} "
            "(check the file's and its folder's permissions)"
        )
    return CatalogError(f"catalog error: {exc.__class__.__name__}: {message}")


def _shown(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _first_line(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc).strip()
    return text_.splitlines()[0] if text_ else exc.__class__.__name__


__all__ = ["MODEL_MODULES", "SCHEMA_VERSION", "Catalog", "catalog_error", "open_catalog"]
