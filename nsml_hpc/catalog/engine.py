"""Open a catalog: the engine (SQLite with a busy timeout, or any SQLAlchemy URL), the tables,
and the schema version that later releases migrate from.

A SQLite catalog uses WAL on a local disk and SQLite's rollback journal (``DELETE``) on a
network file system (:mod:`nsml_hpc.catalog.filesystem`), where WAL is unsafe. Its file is
checked before SQLAlchemy sees it: a missing folder that cannot be made, a file that cannot be
read or written (a read-only mount, permissions) is one :class:`SettingsError` line naming the
file, and nothing is written.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import Session, SQLModel, create_engine, select

from nsml_hpc.catalog.filesystem import mount_of_path
from nsml_hpc.catalog.models import CatalogMeta
from nsml_hpc.errors import CatalogError, NsmlError, SettingsError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000


SQLITE_WAL_VERSION = 2  # bytes 18-19 of a SQLite header: 1 rollback journal, 2 WAL
FIX = (
    "make it writable, or point the catalog elsewhere (catalog = ... in the config file, or "
    "NSML_HPC_CATALOG)"
)


def _sqlite_pragmas(journal_mode: str) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA journal_mode={journal_mode}")
        # WAL is safe with NORMAL; the rollback journal needs FULL to survive a power cut.
        cursor.execute(f"PRAGMA synchronous={'NORMAL' if journal_mode == 'WAL' else 'FULL'}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def check_sqlite_file(path: Path) -> None:
    """One line naming the file when SQLite could not use it (SQLite itself only says
    "unable to open database file"). A missing file's folder is created here."""
    if path.is_dir():
        raise SettingsError(f"catalog {path} is a folder, not a SQLite file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(
            f"cannot create the catalog's folder {path.parent}: {exc.strerror}; {FIX}"
        ) from exc
    if path.exists() and not os.access(path, os.R_OK):
        raise SettingsError(f"catalog {path} is not readable (permission denied); {FIX}")
    if path.exists() and not os.access(path, os.W_OK):
        raise SettingsError(f"catalog {path} is read-only; {FIX}")
    if not os.access(path.parent, os.W_OK | os.X_OK):  # SQLite writes its journal beside it
        raise SettingsError(
            f"catalog {path}: its folder {path.parent} is read-only (SQLite writes its journal "
            f"there); {FIX}"
        )


def _in_wal_mode(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            header = handle.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == SQLITE_WAL_VERSION


def journal_mode_for(path: Path) -> tuple[str, str | None]:
    """``WAL`` on a local disk, ``DELETE`` on a network file system; and a one-line note when
    that is newly decided (a new catalog, or one that was in WAL) on a network file system."""
    mount = mount_of_path(path)
    if mount is None or not mount.is_network:
        return "WAL", None
    if path.exists() and not _in_wal_mode(path):
        return "DELETE", None
    return "DELETE", (
        f"catalog {path} is on {mount.fs_type} ({mount.mount_point}): using SQLite's rollback "
        "journal, as WAL is unsafe on a network file system (user guide: The catalog on a cluster)"
    )


def _make_sqlite_engine(parsed: URL) -> tuple[Engine, str | None]:
    note = None
    journal = "WAL"
    if parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database).expanduser()
        check_sqlite_file(path)
        journal, note = journal_mode_for(path)
    engine = create_engine(
        parsed, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
    )
    event.listen(engine, "connect", _sqlite_pragmas(journal))
    return engine, note


def _make_engine(url: str) -> tuple[Engine, str | None]:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise SettingsError(f"invalid catalog URL {url!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        return _make_sqlite_engine(parsed)
    try:
        return create_engine(parsed, pool_pre_ping=True), None
    except (ImportError, SQLAlchemyError) as exc:
        raise CatalogError(f"cannot use catalog {parsed.render_as_string()}: {exc}") from exc


class Catalog:
    """An open catalog. Only the front end writes to it (jobs never do)."""

    def __init__(self, engine: Engine, notes: list[str] | None = None) -> None:
        self.engine = engine
        self.notes = notes or []  # one-line notes for the user (a journal mode decided)

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
        """One line naming the catalog; a read-only one is the user's setting to fix."""
        where = _shown(self.engine.url.render_as_string(hide_password=True))
        message = _first_line(exc)
        if "readonly database" in message or "read-only" in message:
            return SettingsError(f"catalog {where} is read-only ({message}); {FIX}")
        if "not a database" in message:
            return SettingsError(
                f"catalog {where} is not a SQLite database; point the catalog at another file "
                "(catalog = ... in the config file, or NSML_HPC_CATALOG)"
            )
        return CatalogError(f"catalog {where}: {exc.__class__.__name__}: {message}")

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
    engine, note = _make_engine(url)
    catalog = Catalog(engine, [note] if note else [])
    try:
        _ensure_schema(catalog)
    except SQLAlchemyError as exc:
        catalog.close()
        error = catalog.error(exc)
        raise (
            error
            if isinstance(error, SettingsError)
            else CatalogError(f"cannot open catalog {_shown(url)}: {_first_line(exc)}")
        ) from exc
    except CatalogError:
        catalog.close()
        raise
    return catalog


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _first_line(exc: BaseException) -> str:
    """SQLAlchemy's message without its statement, parameters and background link."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc)
    return text.strip().splitlines()[0] if text.strip() else exc.__class__.__name__
