"""Setting a catalog up for a team: one command for the team's admin.

PostgreSQL (``setup_postgres_team``), run with an admin URL (a role that may create roles and
databases, or the database's owner):

- the database is created if missing; the schema is brought to the newest revision by the
  admin's role, which therefore owns every table;
- a group role ``<database>_members`` gets CONNECT on the database (PUBLIC loses it) and
  each ``--user`` gets a LOGIN role of that name (peer authentication on the login node:
  no password; or ``--password``: a generated one, printed once) and membership;
- members may read every table, and write only their own sessions' rows: row-level security
  policies on ``session`` (``owner = current_user``) and on every table that belongs to a
  session (through ``session_id``), statement triggers that refuse a DELETE of another
  user's rows with an error (RLS alone would skip them silently), column privileges that keep
  ``owner`` and ``session_id`` out of reach of UPDATE, and read-only ``catalog_meta``,
  ``catalog_admin`` and ``alembic_version``; admins (``catalog_admin``) may change everything;
- the admin role is recorded as an admin.

SQLite (``setup_sqlite_team``): the catalog file in a folder of a shared group, the folder
setgid and group-writable, the file group-read-writable (SQLite gives its -wal and -shm files
the database file's permissions). SQLite itself enforces nothing beyond that: ownership is
nsml-hpc's check only.
"""

from __future__ import annotations

import grp
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine import make_url as _url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import create_engine

from nsml_hpc.catalog import migrations
from nsml_hpc.errors import CatalogError, ConfigError, SpecError

ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Tables that are not a session's: members read them; who writes them is below.
READ_ONLY = ("catalog_meta", "catalog_admin", "alembic_version")
# Keyed by cluster account, refreshed by anyone: the cluster's answers, and the mirror of its
# dataset folders (whose files the cluster's own permissions guard).
SHARED_CACHES = ("cluster_info_cache", "dataset_version")
PER_USER = {
    "cluster_poll": "user",
    "slurm_clock": "user",
    "retired_number": "owner",
}  # rows a user writes for themself
# The column that ties a table's rows to their session (lineage: the forked child), and
# tables whose rows belong to a session through one of its jobs.
SESSION_COLUMN = {"lineage": "child_session_id"}
JOB_COLUMN = {"job_allocation": "job_row_id"}
FUNCTIONS_SQL = """
CREATE OR REPLACE FUNCTION nsml_is_admin() RETURNS boolean
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT EXISTS (SELECT 1 FROM catalog_admin WHERE name = current_user)
$$;
-- The row's session is the caller's (or already gone: its deletion was checked on session).
CREATE OR REPLACE FUNCTION nsml_owns(sid integer) RETURNS boolean
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT NOT EXISTS (SELECT 1 FROM session s WHERE s.id = sid AND s.owner <> current_user)
    OR nsml_is_admin()
$$;
CREATE OR REPLACE FUNCTION nsml_owns_job(jid integer) RETURNS boolean
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT NOT EXISTS (
    SELECT 1 FROM job j JOIN session s ON s.id = j.session_id
    WHERE j.id = jid AND s.owner <> current_user
  ) OR nsml_is_admin()
$$;
"""


@dataclass
class TeamSetup:
    """What the admin tells the team: the catalog URL each user puts in their config."""

    database: str
    group: str
    urls: dict[str, str] = field(default_factory=dict)
    admins: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)  # revisions the upgrade applied


def _check_role(name: str) -> str:
    if not ROLE_NAME.fullmatch(name):
        raise SpecError(
            f"{name!r} cannot be a database role here: lower-case letters, digits and '_' "
            "(at most 63, not starting with a digit)"
        )
    return name


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _owned_tables(metadata_tables: list[str]) -> dict[str, str]:
    """Table -> the column naming its session (``id`` for ``session`` itself)."""
    tables = migrations.target_metadata().tables
    owned: dict[str, str] = {}
    for name in metadata_tables:
        if name == "session":
            owned[name] = "id"
            continue
        column = JOB_COLUMN.get(name) or SESSION_COLUMN.get(name, "session_id")
        if column in tables[name].columns:
            owned[name] = column
    return owned


def apply_row_security(conn: Connection, group: str) -> None:
    """Grants, policies and triggers for ``group`` on every table (idempotent: run again
    after each upgrade, which may add tables)."""
    tables = sorted(migrations.target_metadata().tables)
    conn.exec_driver_sql(FUNCTIONS_SQL)
    g = _quote(group)
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {g}")
    conn.exec_driver_sql(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {g}")
    conn.exec_driver_sql(f"GRANT SELECT ON alembic_version TO {g}")
    owned = _owned_tables(tables)
    for table in tables:
        t = _quote(table)
        conn.exec_driver_sql(f"REVOKE ALL ON {t} FROM {g}")
        if table in READ_ONLY:
            conn.exec_driver_sql(f"GRANT SELECT ON {t} TO {g}")
            continue
        if table in SHARED_CACHES:
            conn.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO {g}")
            continue
        key = owned.get(table)
        columns = [c.name for c in migrations.target_metadata().tables[table].columns]
        frozen = {"owner", "id"} if table == "session" else {key or "", "id"}
        updatable = ", ".join(_quote(c) for c in columns if c not in frozen)
        conn.exec_driver_sql(f"GRANT SELECT, INSERT, DELETE ON {t} TO {g}")
        if updatable:
            conn.exec_driver_sql(f"GRANT UPDATE ({updatable}) ON {t} TO {g}")
        mine = _rule(table, key, "")
        conn.exec_driver_sql(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")
        for action, clause in (
            ("select", "FOR SELECT USING (true)"),
            ("insert", f"FOR INSERT WITH CHECK ({mine})"),
            ("update", f"FOR UPDATE USING (true) WITH CHECK ({mine})"),
            ("delete", "FOR DELETE USING (true)"),
        ):
            policy = _quote(f"nsml_{action}")
            conn.exec_driver_sql(f"DROP POLICY IF EXISTS {policy} ON {t}")
            conn.exec_driver_sql(f"CREATE POLICY {policy} ON {t} {clause}")
        _delete_guard(conn, table, _rule(table, key, "gone."))


def _rule(table: str, key: str | None, row: str) -> str:
    """SQL: the row (columns prefixed with ``row``) is the caller's to change."""
    if table in PER_USER:
        return f"{row}{_quote(PER_USER[table])} = current_user OR nsml_is_admin()"
    if table == "session":
        return f"{row}owner = current_user OR nsml_is_admin()"
    if key is not None and table in JOB_COLUMN:
        return f"nsml_owns_job({row}{_quote(key)})"
    if key is not None:
        return f"nsml_owns({row}{_quote(key)})"
    raise CatalogError(f"table {table} has no owner rule; add one to nsml_hpc/catalog/team.py")


def _delete_guard(conn: Connection, table: str, rule: str) -> None:
    """A statement trigger that turns a DELETE touching another user's rows into an error
    (row-level security would delete nothing and say nothing)."""
    function = _quote(f"nsml_guard_{table}")
    conn.exec_driver_sql(
        f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM gone WHERE NOT ({rule})) THEN
    RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
      MESSAGE = 'permission denied: ' || TG_TABLE_NAME || ' rows of another user''s session';
  END IF;
  RETURN NULL;
END $$"""
    )
    trigger = _quote(f"nsml_guard_{table}")
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger} ON {_quote(table)}")
    conn.exec_driver_sql(
        f"CREATE TRIGGER {trigger} AFTER DELETE ON {_quote(table)} "
        f"REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    )


def _admin_engine(url: str) -> Engine:
    try:
        return create_engine(make_url(url), pool_pre_ping=True)
    except (ImportError, SQLAlchemyError) as exc:
        raise CatalogError(f"cannot use {url}: {exc}") from exc


def _ensure_database(admin_url: str) -> str:
    """Create the catalog database if missing; returns its name."""
    parsed = _url(admin_url)
    database = parsed.database or ""
    _check_role(database)
    maintenance = _admin_engine(parsed.set(database="postgres").render_as_string(False))
    try:
        with maintenance.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": database}
            ).scalar()
            if not exists:
                conn.exec_driver_sql(f"CREATE DATABASE {_quote(database)}")
    finally:
        maintenance.dispose()
    return database


def setup_postgres_team(
    admin_url: str,
    users: list[str],
    *,
    admins: list[str] | None = None,
    passwords: bool = False,
    socket_dir: str = "/var/run/postgresql",
) -> TeamSetup:
    """Make (or bring up to date) the team catalog at ``admin_url`` for ``users``."""
    for name in [*users, *(admins or [])]:
        _check_role(name)
    if not users:
        raise SpecError("name the team's users: --user NAME (repeatable)")
    database = _ensure_database(admin_url)
    group = _check_role(f"{database}_members")
    engine = _admin_engine(admin_url)
    setup = TeamSetup(database=database, group=group)
    parsed = _url(admin_url)
    try:
        if migrations.needs_upgrade(engine):
            setup.applied = migrations.upgrade(engine)
        with engine.begin() as conn:
            me = str(conn.execute(text("SELECT current_user")).scalar())
            _ensure_role(conn, group, login=False, password=None)
            conn.exec_driver_sql(f"REVOKE CONNECT ON DATABASE {_quote(database)} FROM PUBLIC")
            conn.exec_driver_sql(f"GRANT CONNECT ON DATABASE {_quote(database)} TO {_quote(group)}")
            for user in users:
                password = secrets.token_urlsafe(18) if passwords else None
                _ensure_role(conn, user, login=True, password=password)
                conn.exec_driver_sql(f"GRANT {_quote(group)} TO {_quote(user)}")
                if password is None:
                    setup.urls[user] = f"postgresql+psycopg://{user}@/{database}?host={socket_dir}"
                else:
                    port = f":{parsed.port}" if parsed.port else ""
                    setup.urls[user] = (
                        f"postgresql+psycopg://{user}:{password}@{parsed.host}{port}/{database}"
                    )
            for admin in {me, *(admins or [])}:
                conn.execute(
                    text("INSERT INTO catalog_admin (name) VALUES (:n) ON CONFLICT DO NOTHING"),
                    {"n": admin},
                )
            apply_row_security(conn, group)
            setup.admins = sorted(
                str(row[0]) for row in conn.execute(text("SELECT name FROM catalog_admin"))
            )
        from nsml_hpc.catalog.schema import open_catalog

        open_catalog(admin_url).close()  # its after-open fills (summaries) run as the admin
    except SQLAlchemyError as exc:
        raise CatalogError(f"team set-up failed: {_first_line(exc)}") from exc
    finally:
        engine.dispose()
    return setup


def _ensure_role(conn: Connection, name: str, *, login: bool, password: str | None) -> None:
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).scalar()
    role = _quote(name)
    if not exists:
        conn.exec_driver_sql(f"CREATE ROLE {role} {'LOGIN' if login else 'NOLOGIN'}")
    if password is not None:
        # utility statements take no parameters: a generated password (URL-safe letters only)
        if not re.fullmatch(r"[A-Za-z0-9_-]+", password):
            raise CatalogError("refusing a password with characters beyond [A-Za-z0-9_-]")
        conn.exec_driver_sql(f"ALTER ROLE {role} LOGIN PASSWORD '{password}'")


def _first_line(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc).strip()
    return message.splitlines()[0] if message else exc.__class__.__name__


def upgrade_postgres_team(admin_url: str) -> list[str]:
    """Upgrade a team catalog as its admin, and re-apply the row security (a new revision may
    add tables)."""
    engine = _admin_engine(admin_url)
    try:
        applied = migrations.upgrade(engine) if migrations.needs_upgrade(engine) else []
        with engine.begin() as conn:
            secured = conn.execute(
                text("SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass('session')")
            ).scalar()
            if secured:
                database = str(conn.execute(text("SELECT current_database()")).scalar())
                apply_row_security(conn, f"{database}_members")
    except SQLAlchemyError as exc:
        raise CatalogError(f"upgrade failed: {_first_line(exc)}") from exc
    finally:
        engine.dispose()
    return applied


def setup_sqlite_team(path: Path, group: str) -> str:
    """Make ``path``'s folder and file a shared group's; returns the catalog URL."""
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise ConfigError(f"no group {group!r} on this machine (groupadd it first)") from None
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path}"
    from nsml_hpc.catalog.schema import open_catalog

    open_catalog(url).close()
    try:
        os.chown(folder, -1, gid)
        folder.chmod(0o2770)  # setgid: new -wal/-shm files get the group
        for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if candidate.exists():
                os.chown(candidate, -1, gid)
                candidate.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP)
    except OSError as exc:
        raise ConfigError(f"cannot share {folder} with group {group}: {exc.strerror}") from exc
    return url


__all__ = [
    "TeamSetup",
    "apply_row_security",
    "setup_postgres_team",
    "setup_sqlite_team",
    "upgrade_postgres_team",
]
