"""The catalog handle: the engine (SQLite with a busy timeout, or any SQLAlchemy URL) and
:class:`Catalog`, the unit of work every catalog module takes, with who the caller is in it
(:attr:`Catalog.user`, the owner of the sessions it creates). Opening one (the schema,
upgraded by :mod:`nsml_hpc.catalog.migrations` when behind) is :mod:`nsml_hpc.catalog.schema`.

A SQLite catalog uses WAL on a local disk and SQLite's rollback journal (``DELETE``) on a
network file system (:mod:`nsml_hpc.catalog.filesystem`), where WAL is unsafe. Its file is
checked before SQLAlchemy sees it: a missing folder that cannot be made, a file that cannot be
read or written (a read-only mount, permissions) is one :class:`SettingsError` line naming the
file, and nothing is written.
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import Session, create_engine

from nsml_hpc.catalog.filesystem import mount_of_path
from nsml_hpc.catalog.models import CatalogMeta
from nsml_hpc.errors import CatalogError, NsmlError, PermissionRefused, SettingsError

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


def make_engine_with_note(url: str) -> tuple[Engine, str | None]:
    """The engine for ``url``, and a one-line note for the user when a journal mode was
    newly decided for a SQLite file on a network file system."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise SettingsError(f"invalid catalog URL {url!r}: {exc}") from exc
    logging.getLogger(__name__).info("catalog %s", parsed.render_as_string(hide_password=True))
    if parsed.get_backend_name() == "sqlite":
        return _make_sqlite_engine(parsed)
    try:
        return create_engine(parsed, pool_pre_ping=True), None
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

    def __init__(
        self,
        engine: Engine,
        notes: list[str] | None = None,
        user: str | None = None,
        *,
        row_security: bool = False,
    ) -> None:
        self.engine = engine
        self.notes = notes or []  # one-line notes for the user (a journal mode decided)
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
        """One line naming the catalog; a read-only one is the user's setting to fix; the
        database refusing a change of another user's rows is PermissionRefused."""
        where = shown_url(self.engine.url.render_as_string(hide_password=True))
        message = first_line(exc)
        lowered = message.lower()
        if any(marker in lowered for marker in REFUSED):
            return PermissionRefused(f"the catalog refused the change: {message}")
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


# What PostgreSQL says when a change is not the caller's to make (row-level security,
# privileges, the delete guards of nsml_hpc.catalog.team).
REFUSED = ("row-level security", "permission denied", "belongs to")


def make_engine(url: str) -> Engine:
    return make_engine_with_note(url)[0]


def connect(url: str) -> Catalog:
    """A catalog handle for ``url`` (its notes for the user attached); no tables made yet."""
    engine, note = make_engine_with_note(url)
    return Catalog(engine, [note] if note else [])


def shown_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def first_line(exc: BaseException) -> str:
    """SQLAlchemy's message without its statement, parameters and background link."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc)
    return text.strip().splitlines()[0] if text.strip() else exc.__class__.__name__
