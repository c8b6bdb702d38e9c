"""Schema migrations: a catalog written by the code before migrations (schema version 1, with
two users' sessions, metrics and snapshots in it: tests/data/catalog_v1.*.sql, made by
tests/data/make_catalog_v1.py from that code) upgrades in place on SQLite and PostgreSQL,
keeps every row, and ends with exactly the schema of the current models."""

from __future__ import annotations

import getpass
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from nsml_hpc.catalog import migrations
from nsml_hpc.catalog.schema import SCHEMA_VERSION, open_catalog
from nsml_hpc.catalog.sessions import get_session, list_sessions
from nsml_hpc.catalog.snapshots import lineage_of, snapshots_of
from nsml_hpc.catalog.summaries import summaries_of
from nsml_hpc.errors import CatalogError

DATA = Path(__file__).resolve().parent.parent / "data"
DUMP_SCHEMA = "nsml_v1_dump"
V1_COUNTS = {
    "session": 4,
    "job": 4,
    "state_change": 8,
    "metric_point": 240,
    "metric_summary": 8,
    "event": 5,
    "snapshot": 2,
    "lineage": 1,
    "job_run": 1,
    "scrape_cursor": 8,
    "gpu_usage": 1,
    "metric_source": 1,
    "snapshot_scan": 1,
}


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";\n") if part.strip()]


@pytest.fixture(params=["sqlite", "postgres"])
def v1_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A catalog exactly as the schema-version-1 code left it."""
    if request.param == "sqlite":
        path = tmp_path / "v1.db"
        connection = sqlite3.connect(path)
        connection.executescript((DATA / "catalog_v1.sqlite.sql").read_text())
        connection.close()
        yield f"sqlite:///{path}"
        return
    base = request.getfixturevalue("postgres_url")
    schema = f"v1_{uuid.uuid4().hex[:12]}"
    dump = (DATA / "catalog_v1.postgresql.sql").read_text().replace(DUMP_SCHEMA, schema)
    engine = create_engine(base)
    with engine.begin() as conn:
        for statement in _statements(dump):
            conn.exec_driver_sql(statement)
    yield f"{base}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table: int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar() or 0)
            for table in V1_COUNTS
        }


def _schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, migrations.target_metadata()))


def test_a_v1_catalog_upgrades_in_place_and_keeps_every_row(v1_url: str) -> None:
    raw = create_engine(v1_url)
    assert _counts(raw) == V1_COUNTS
    catalog = open_catalog(v1_url, user="alice")
    assert catalog.schema_version() == SCHEMA_VERSION == 2
    assert _counts(catalog.engine) == V1_COUNTS
    assert _schema_diff(catalog.engine) == []
    with catalog.engine.connect() as conn:
        owners: dict[str, str] = dict(
            conn.execute(text('SELECT name, owner FROM session WHERE owner = "user"')).all()
        )
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            migrations.HEAD
        )
    assert owners == {"team/1": "alice", "team/2": "bob", "team/3": "alice", "mnist/1": "alice"}
    # the library reads the upgraded rows: names by owner, metrics, snapshots, lineage
    team1 = get_session(catalog, "team/1")
    assert team1.owner == "alice" and team1.metric_count == 60
    assert get_session(catalog, "bob/team/2").state == "RUNNING"
    assert team1.id is not None
    assert [s.tag for s in snapshots_of(catalog, [team1.id])[team1.id]] == ["step-10", "step-20"]
    summary = summaries_of(catalog, [team1.id], ["loss"])[(team1.id, "loss")]
    assert summary.points == 30
    mnist = get_session(catalog, "alice/mnist/1")
    assert mnist.id is not None
    lineage = lineage_of(catalog, mnist.id)
    assert lineage is not None and lineage.parent_session_id == team1.id
    assert len(list_sessions(catalog)) == 4
    catalog.close()
    # a second open finds it current and changes nothing
    again = open_catalog(v1_url, user="bob")
    assert _counts(again.engine) == V1_COUNTS
    again.close()
    raw.dispose()


def test_after_the_upgrade_numbers_are_per_owner_and_foreign_keys_still_cascade(
    v1_url: str,
) -> None:
    catalog = open_catalog(v1_url, user="bob")
    with catalog.engine.begin() as conn:
        # bob may now have a team/1 of his own (alice's team/1 exists)
        conn.execute(
            text(
                'INSERT INTO session (name, project, number, "user", owner, cluster, state, '
                "run_dir, spec_json, hyperparameters_json, memo, gpus, created_at, "
                "last_metrics_json, metric_count, malformed_lines, updated_at) VALUES "
                "('team/1', 'team', 1, 'bob', 'bob', 'local', 'COMPLETED', '/r', '{}', '{}', "
                "'', 0, 1, '{}', 0, 0, 1)"
            )
        )
    with pytest.raises(Exception, match=r"(?i)unique"), catalog.engine.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO session (name, project, number, "user", owner, cluster, '
                "state, run_dir, spec_json, hyperparameters_json, memo, gpus, created_at, "
                "last_metrics_json, metric_count, malformed_lines, updated_at) VALUES "
                "('team/1', 'team', 1, 'bob', 'bob', 'local', 'COMPLETED', '/r', '{}', "
                "'{}', '', 0, 1, '{}', 0, 0, 1)"
            )
        )
    team1 = get_session(catalog, "alice/team/1")
    with catalog.engine.begin() as conn:
        conn.execute(text("DELETE FROM session WHERE id = :id"), {"id": team1.id})
        left = conn.execute(
            text("SELECT COUNT(*) FROM metric_point WHERE session_id = :id"), {"id": team1.id}
        ).scalar()
        parent = conn.execute(text("SELECT parent_session_id FROM lineage")).scalar()
    assert left == 0 and parent is None  # CASCADE and SET NULL survived the table rebuild
    catalog.close()


def test_the_revisions_alone_build_the_models_schema(catalog_url: str) -> None:
    """From an empty database, baseline + every revision gives what the models describe
    (a new catalog is made with create_all and stamped: both must be the same)."""
    engine = create_engine(catalog_url)
    with engine.begin() as conn:
        config = migrations._config(conn)
        command.upgrade(config, migrations.HEAD)
    assert _schema_diff(engine) == []
    engine.dispose()


def test_a_new_catalog_is_stamped_at_head(catalog_url: str) -> None:
    catalog = open_catalog(catalog_url)
    assert _schema_diff(catalog.engine) == []
    with catalog.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            migrations.HEAD
        )
    assert catalog.schema_version() == SCHEMA_VERSION
    catalog.close()


def test_a_catalog_from_a_newer_release_is_refused(catalog_url: str) -> None:
    catalog = open_catalog(catalog_url)
    with catalog.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    catalog.close()
    with pytest.raises(CatalogError, match="newer than this nsml-hpc understands"):
        open_catalog(catalog_url)


def test_two_processes_opening_a_v1_catalog_at_once_upgrade_it_once(v1_url: str) -> None:
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            open_catalog(v1_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    engine = create_engine(v1_url)
    assert _counts(engine) == V1_COUNTS
    assert _schema_diff(engine) == []
    engine.dispose()


def test_a_personal_v1_catalog_stays_its_users_when_the_cluster_account_differs(
    tmp_path: Path,
) -> None:
    """A laptop user (login ``root`` here) whose cluster account is ``alice``: after the
    upgrade the sessions are the login user's, so ps and sync still see them as theirs."""
    path = tmp_path / "personal.db"
    connection = sqlite3.connect(path)
    connection.executescript((DATA / "catalog_v1.sqlite.sql").read_text())
    connection.execute("PRAGMA foreign_keys=ON")  # bob's rows go with his session
    connection.execute("DELETE FROM session WHERE \"user\" = 'bob'")
    connection.commit()
    connection.close()
    catalog = open_catalog(f"sqlite:///{path}")
    owners = {record.owner for record in list_sessions(catalog)}
    assert owners == {getpass.getuser()}
    assert {record.user for record in list_sessions(catalog)} == {"alice"}
    assert get_session(catalog, "team/1").owner == catalog.user
    catalog.close()
