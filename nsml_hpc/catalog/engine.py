"""The catalog handle: the engine (SQLite with WAL and a busy timeout, or any SQLAlchemy URL)
and :class:`Catalog`, the unit of work every catalog module takes, with who the caller is in
it (:attr:`Catalog.user`, the owner of the sessions it creates). Opening one (the schema,
upgraded by :mod:`nsml_hpc.catalog.migrations` when behind) is :mod:`nsml_hpc.catalog.schema`."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import Session, create_engine

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


def make_engine(url: str) -> Engine:
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

    def close(self) -> None:
        self.engine.dispose()


# What the databases say when a change is not the caller's to make (PostgreSQL row-level
# security and privileges, the triggers of nsml_hpc.catalog.team) or the catalog is read-only.
_REFUSED = ("row-level security", "permission denied", "belongs to")
_READ_ONLY = ("readonly database", "read-only", "unable to open database file")


def catalog_error(exc: SQLAlchemyError, engine: Engine) -> NsmlError:
    message = first_line(exc)
    lowered = message.lower()
    if any(marker in lowered for marker in _REFUSED):
        return PermissionRefused(f"the catalog refused the change: {message}")
    if any(marker in lowered for marker in _READ_ONLY):
        return CatalogError(
            f"cannot write the catalog {shown_url(engine)}: {message} "
            "(check the file's and its folder's permissions)"
        )
    return CatalogError(f"catalog error: {exc.__class__.__name__}: {message}")


def shown_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def first_line(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc).strip()
    return text_.splitlines()[0] if text_ else exc.__class__.__name__
