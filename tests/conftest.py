"""Shared fixtures: an isolated nsml-hpc environment per test, the real Slurm sandbox, and a
real PostgreSQL server for the catalog tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.config import site_policy
from nsml_hpc.config.settings import load_settings
from nsml_hpc.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's syncs write their watch lists (nsml_hpc.sync.watchlist) into its own
    folder, never into the user's state folder."""
    monkeypatch.setenv("NSML_HPC_STATE_DIR", str(tmp_path / "nsml-state"))


@pytest.fixture
def nsml_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private catalog, run root and config for one test (XDG paths redirected)."""
    home = tmp_path / "nsml"
    home.mkdir()
    monkeypatch.setenv("NSML_HPC_CATALOG", f"sqlite:///{home / 'catalog.db'}")
    monkeypatch.setenv("NSML_HPC_RUN_ROOT", str(home / "runs"))
    (home / "config.toml").write_text("")  # a named config file must exist
    monkeypatch.setenv("NSML_HPC_CONFIG", str(home / "config.toml"))
    monkeypatch.setenv("NSML_HPC_POLL_FLOOR", "0.5")
    # Tests wait for states Slurm alone can give: its clock as fast as the poll floor, no
    # ceiling to speak of, and no site policy but the test's own (none unless it writes one).
    monkeypatch.setenv("NSML_HPC_SLURM_FLOOR", "0.5")
    monkeypatch.setenv("NSML_HPC_SLURM_QUERIES", "100000")
    # Both policy files are the test's: a host's real /etc/nsml-hpc/site.toml changes nothing.
    monkeypatch.setattr(site_policy, "SITE_CONFIG", home / "etc-site.toml")
    monkeypatch.setenv("NSML_HPC_SITE_CONFIG", str(home / "site.toml"))
    monkeypatch.setenv("NSML_HPC_SUBMIT_GRACE", "30")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg-config"))
    return home


@pytest.fixture
def workspace(nsml_env: Path) -> Iterator[Workspace]:
    ws = Workspace.open(load_settings())
    yield ws
    ws.close()


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's code folder, which is the working directory during the test."""
    code = tmp_path / "proj"
    code.mkdir()
    monkeypatch.chdir(code)
    return code


# --- the real Slurm sandbox -------------------------------------------------------------------


def _docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture(scope="session")
def slurm_sandbox() -> Iterator[str]:
    """A running Slurm, chosen by ``NSML_HPC_SANDBOX`` (default ``auto``):

    - ``local``: the local sandbox, started (idempotently) by sandbox/slurm-sandbox.sh;
    - ``external``: a Slurm that is already up (sinfo must answer);
    - ``compose``: docker-compose.slurm.yml through testcontainers (UNVERIFIED: our machines
      have no Docker engine);
    - ``auto``: compose when a Docker engine answers and this machine cannot run the local
      sandbox (not root, or no apt-get), else local.
    """
    mode = os.environ.get("NSML_HPC_SANDBOX", "auto")
    can_run_local = os.geteuid() == 0 and shutil.which("apt-get") is not None
    if mode == "compose" or (mode == "auto" and not can_run_local and _docker_engine_answers()):
        from testcontainers.compose import DockerCompose

        with DockerCompose(str(REPO), compose_file_name="docker-compose.slurm.yml", wait=True):
            yield "compose"
        return
    if mode == "external":
        # A Slurm someone else started (a real cluster's login node, or a sandbox already up).
        subprocess.run(["sinfo", "--noheader"], check=True, capture_output=True, timeout=30)
        yield "external"
        return
    done = subprocess.run(
        ["bash", str(REPO / "sandbox" / "slurm-sandbox.sh"), "up"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"the Slurm sandbox did not come up:\n{done.stdout}\n{done.stderr}")
    yield "local"


# --- PostgreSQL -----------------------------------------------------------------------------


def _postgres(variable: str, *args: str) -> str:
    """A URL from ``variable``, else the last line of scripts/postgres.sh (which starts the
    server if need be)."""
    url = os.environ.get(variable)
    if url:
        return url
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "postgres.sh"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"PostgreSQL did not start:\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a real PostgreSQL server (started by scripts/postgres.sh if need be)."""
    return _postgres("NSML_HPC_TEST_PG_URL")


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """URL of a PostgreSQL role that may create roles and databases (a team's admin)."""
    return _postgres("NSML_HPC_TEST_PG_ADMIN_URL", "--admin")


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty catalog URL: a SQLite file, or a schema of its own on the real
    PostgreSQL server (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    base_url = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    create_postgres_schema(base_url, schema)
    yield f"{base_url}?options=-csearch_path%3D{schema}"
    drop_postgres_schema(base_url, schema)


def _admin_sql(base_url: str, statement: str) -> None:
    """One statement on the server with a bare engine: never a catalog on the shared public
    schema (another test run's catalog may be there, of any schema version)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(base_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def create_postgres_schema(base_url: str, schema: str) -> None:
    _admin_sql(base_url, f'CREATE SCHEMA "{schema}"')


def drop_postgres_schema(base_url: str, schema: str) -> None:
    _admin_sql(base_url, f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    """An open catalog on SQLite and on PostgreSQL (the test runs once with each)."""
    from nsml_hpc.catalog.schema import open_catalog

    opened = open_catalog(catalog_url)
    yield opened
    opened.close()
