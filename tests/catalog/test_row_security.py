"""Ownership enforced where the data lives: a PostgreSQL team catalog made by
``nsml-hpc catalog setup-team`` lets each member's database role change only its own
sessions' rows (and their metrics, snapshots, events) while reading everyone's. Here the
members are roles of this test with passwords (``--password``); tests/slurm/test_teams.py
does the same with the machine's users alice and bob over peer authentication."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url, text

from nsml_hpc.catalog import migrations
from nsml_hpc.catalog.metrics import CursorState, store_metric_batch
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import get_session, mark_submitted, reserve_session, update_memo
from nsml_hpc.errors import CatalogError, PermissionRefused
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.runfiles.scrape import parse_metric_lines
from tests.helpers import drop_database

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def team_db(postgres_admin_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A team catalog database with members <tag>_alice and <tag>_bob (dropped after)."""
    tag = f"t{uuid.uuid4().hex[:8]}"
    database = f"{tag}_catalog"
    admin_url = make_url(postgres_admin_url).set(database=database).render_as_string(False)
    done = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "nsml-hpc"),
            "catalog",
            "setup-team",
            "--admin-url",
            admin_url,
            "--user",
            f"{tag}_alice",
            "--user",
            f"{tag}_bob",
            "--password",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    setup = json.loads(done.stdout)
    urls = {name.removeprefix(f"{tag}_"): url for name, url in setup["urls"].items()}
    yield admin_url, urls
    server = make_url(postgres_admin_url).render_as_string(False)
    with psycopg.connect(
        server.replace("postgresql+psycopg", "postgresql"), autocommit=True
    ) as conn:
        drop_database(conn, database)
        for role in (f"{tag}_alice", f"{tag}_bob", f"{database}_members"):
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg", "postgresql")


def _alices_session(url: str) -> int:
    catalog = open_catalog(url)
    record = reserve_session(
        catalog,
        spec=SessionSpec(project="team", script="t.py"),
        user="alice",
        run_dir_for=lambda n: f"/runs/alice/team/{n}",
        is_free=lambda n: True,
        now=1.0,
    )
    assert record.id is not None
    mark_submitted(catalog, record.id, job_id="7001", cluster="local", now=2.0)
    chunk = b'{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.25}\n'
    batch = parse_metric_lines(chunk, 0, record.id)
    store_metric_batch(catalog, record.id, batch, CursorState(), len(chunk), 3.0)
    catalog.close()
    return record.id


def test_a_member_reads_everything_and_changes_only_their_own_rows(
    team_db: tuple[str, dict[str, str]],
) -> None:
    _admin, urls = team_db
    session_id = _alices_session(urls["alice"])
    bob = open_catalog(urls["bob"])
    assert bob.row_security and bob.user.endswith("_bob")  # the database role is who you are
    seen = get_session(bob, f"{get_session(bob, 'team/1').owner}/team/1")
    assert seen.id == session_id and seen.metric_count == 2  # reading is shared
    # bob's client skipping nsml-hpc's own checks: the database refuses, nothing changes
    with pytest.raises(PermissionRefused, match="row-level security"):
        update_memo(bob, session_id, "bob was here", now=9.0)
    with pytest.raises(PermissionRefused):
        store_metric_batch(
            bob,
            session_id,
            parse_metric_lines(b'{"step": 3, "loss": 9.9}\n', 2, session_id),
            CursorState(),
            100,
            9.0,
        )
    alice = open_catalog(urls["alice"])
    after = get_session(alice, "team/1")
    assert (after.memo, after.metric_count) == ("", 2)
    update_memo(alice, session_id, "alice's own", now=10.0)  # the owner may
    assert get_session(alice, "team/1").memo == "alice's own"
    alice.close()
    bob.close()


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        ("UPDATE session SET memo = 'pwned'", "row-level security policy"),
        ("UPDATE session SET owner = current_user", "permission denied for table session"),
        ("DELETE FROM session", "permission denied: session rows of another user"),
        ("DELETE FROM metric_point", "permission denied: metric_point rows of another user"),
        ("DELETE FROM job", "permission denied: job rows of another user"),
        ("UPDATE metric_point SET value = 0", "row-level security policy"),
        (
            "INSERT INTO state_change (session_id, at, state) SELECT id, 1, 'X' FROM session",
            "row-level security policy",
        ),
        ("INSERT INTO catalog_admin (name) VALUES (current_user)", "permission denied"),
        ("TRUNCATE metric_point", "permission denied"),
    ],
)
def test_bobs_direct_sql_on_alices_rows_is_refused_by_the_database(
    team_db: tuple[str, dict[str, str]], statement: str, error: str
) -> None:
    _admin, urls = team_db
    _alices_session(urls["alice"])
    with psycopg.connect(_plain(urls["alice"])) as alice:
        before = alice.execute(
            "SELECT (SELECT row(s.*)::text FROM session s), (SELECT COUNT(*) FROM metric_point),"
            " (SELECT COUNT(*) FROM job)"
        ).fetchone()
    with psycopg.connect(_plain(urls["bob"])) as bob, pytest.raises(psycopg.Error, match=error):
        bob.execute(statement)
    with psycopg.connect(_plain(urls["alice"])) as alice:
        after = alice.execute(
            "SELECT (SELECT row(s.*)::text FROM session s), (SELECT COUNT(*) FROM metric_point),"
            " (SELECT COUNT(*) FROM job)"
        ).fetchone()
    assert after == before


def test_setup_is_idempotent_and_a_member_cannot_upgrade_the_schema(
    team_db: tuple[str, dict[str, str]],
) -> None:
    admin_url, urls = team_db
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "nsml-hpc"), "catalog", "upgrade", "--admin-url", admin_url],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with psycopg.connect(_plain(admin_url)) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001_baseline'")
    with pytest.raises(CatalogError, match="the team's admin runs: nsml-hpc catalog upgrade"):
        open_catalog(urls["bob"])
    with psycopg.connect(_plain(admin_url)) as conn:
        conn.execute(f"UPDATE alembic_version SET version_num = '{migrations.HEAD}'")
    with psycopg.connect(_plain(urls["bob"])) as bob:
        assert bob.execute(text("SELECT 1").text).fetchone() == (1,)
