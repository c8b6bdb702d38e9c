"""alice and bob, real users on the sandbox (which runs with PrivateData=jobs in slurm.conf and
slurmdbd.conf), sharing one catalog: a PostgreSQL catalog set up by ``nsml-hpc catalog
setup-team`` (each connects as their own database role by peer authentication), and a SQLite
catalog in a folder of a shared Unix group. Every nsml-hpc command here runs as alice or bob
through runuser, never as root; root only sets things up and reads Slurm's accounting."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from tests.helpers import drop_database
from tests.slurm.team import (
    Member,
    ensure_team_group,
    make_members,
    make_run_root,
    shared_folder,
    team_venv,
    write_code,
)

pytestmark = [pytest.mark.slurm, pytest.mark.postgres, pytest.mark.slow]

STEPS = 12
TRAIN = f"""
import time

import nsml_hpc

for step in range({STEPS}):
    nsml_hpc.report(step=step, loss=1.0 / (step + 1), acc=step / {STEPS})
    time.sleep(float(nsml_hpc.session.hyperparameters.get("pause", 0)))
"""


def _private_data_is_on() -> None:
    config = subprocess.run(
        ["scontrol", "show", "config"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    line = next((row for row in config.splitlines() if row.startswith("PrivateData")), "")
    assert "jobs" in line, f"the sandbox must run with PrivateData=jobs, has: {line!r}"


def _sacct_state(job_id: str) -> str:
    """Slurm's own word (root sees every user's jobs)."""
    return subprocess.run(
        ["sacct", "-n", "-X", "-P", "-j", job_id, "--format=State"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()


def _wait(
    what: str, check: Callable[[], object], timeout: float = 240.0, pause: float = 1.0
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(pause)
    raise AssertionError(f"timed out waiting for {what}")


def _session(member: Member, name: str) -> dict[str, object]:
    return dict(member.json("show", name, "--no-sync"))


def _refused(done: subprocess.CompletedProcess[bytes], *, code: int = 6) -> str:
    err = done.stderr.decode()
    assert done.returncode == code, (done.returncode, err)
    assert err.count("\n") == 1 and err.startswith("nsml-hpc: error: "), err
    return err


@pytest.fixture
def pg_team(slurm_sandbox: str, postgres_admin_url: str) -> Iterator[tuple[dict[str, Member], str]]:
    """A team PostgreSQL catalog for alice and bob (peer authentication), their configs and a
    shared run root; the database and its member role are dropped afterwards."""
    _private_data_is_on()
    venv = team_venv()
    database = f"nsml_team_{uuid.uuid4().hex[:10]}"
    admin_url = make_url(postgres_admin_url).set(database=database).render_as_string(False)
    subprocess.run(
        [
            str(venv / "bin" / "nsml-hpc"),
            "catalog",
            "setup-team",
            "--admin-url",
            admin_url,
            "--user",
            "alice",
            "--user",
            "bob",
        ],
        capture_output=True,
        timeout=300,
        check=True,
    )
    base = shared_folder("nsml-team")
    url = f"postgresql+psycopg://{{user}}@/{database}?host=/var/run/postgresql"
    members = make_members(base, venv, url, make_run_root(base))
    for member in members.values():  # each their own role
        config = member.home / "config.toml"
        config.write_text(config.read_text().replace("{user}", member.name))
    with (members["alice"].home / "config.toml").open("a") as out:  # her runs: hers alone
        out.write('run_dir_mode = "private"\n')
    yield members, database
    server = make_url(postgres_admin_url).render_as_string(False).replace("+psycopg", "")
    with psycopg.connect(server, autocommit=True) as conn:
        drop_database(conn, database)
        conn.execute(f'DROP ROLE IF EXISTS "{database}_members"')
    shutil.rmtree(base, ignore_errors=True)


def test_alice_and_bob_on_one_postgresql_catalog_under_private_data(
    pg_team: tuple[dict[str, Member], str],
) -> None:
    members, database = pg_team
    alice, bob = members["alice"], members["bob"]
    for member in (alice, bob):
        assert (
            member.nsml("catalog", "whoami", check=True)
            .stdout.decode()
            .startswith(f"you are {member.name} (the database enforces ownership)")
        )
    # alice's session runs for a while; bob has one of his own in the same project
    code = write_code(alice, "proj", "train.py", TRAIN)
    done = alice.nsml(
        "submit", "--project", "team", "train.py", "--pause", "2", cwd=code, check=True
    )
    job_id = done.stdout.decode().split("(job ")[1].split(")")[0]
    bobs_code = write_code(bob, "proj", "train.py", TRAIN)
    bob.nsml("submit", "--project", "team", "train.py", "--pause", "0", cwd=bobs_code, check=True)
    _wait("alice's session to run", lambda: _sacct_state(job_id) == "RUNNING")
    alice.nsml("sync", check=True)
    assert _session(alice, "team/1")["state"] == "RUNNING"

    # bob's syncs while it runs: his sacct cannot see her job (PrivateData=jobs), and
    # after the submit grace (2 s here) an earlier version marked it LOST for good
    assert job_id not in bob.run("sacct", "-n", "-X", "-o", "JobID", check=True).stdout.decode()
    bob_seen = []
    for _ in range(4):
        rows = bob.json("ps", "--all-users")
        bob_seen.append({row["name"]: row["state"] for row in rows}["alice/team/1"])
        time.sleep(2.5)
    assert bob_seen == ["RUNNING"] * 4, bob_seen

    # each ownership refusal, while it runs and after: one line, exit 6, nothing changed
    before = _session(alice, "team/1")
    assert "belongs to alice" in _refused(bob.nsml("stop", "alice/team/1"))
    assert "belongs to alice" in _refused(bob.nsml("memo", "alice/team/1", "bob was here"))
    _wait("alice's job to end", lambda: _sacct_state(job_id) == "COMPLETED", timeout=300)
    for argv in (
        ("rm", "alice/team/1"),
        ("rm", "--purge", "alice/team/1"),
        ("model", "pin", "alice/team/1", "latest"),
        ("model", "rm", "alice/team/1", "latest"),
        ("fork", "alice/team/1"),
    ):
        err = _refused(bob.nsml(*argv))
        assert "alice/team/1 belongs to alice" in err and "nothing was changed" in err, argv
    after = _session(alice, "team/1")
    assert {k: after[k] for k in ("state", "memo", "metric_points")} == {
        k: before[k] for k in ("state", "memo", "metric_points")
    }
    assert Path(str(after["run_dir"])).is_dir()

    # alice's own sync ends it COMPLETED with every point her job reported
    alice.nsml("sync", check=True)
    final = _session(alice, "team/1")
    assert final["state"] == "COMPLETED", final["state_text"]
    assert final["metric_points"] == 2 * STEPS and final["last_step"] == STEPS - 1
    assert bob.json("ps", "--all-users", "--no-sync")[-1]["state"] in ("COMPLETED", "RUNNING")

    # views: ps is yours by default, --user / --all-users with a USER column, names say whose
    mine = bob.nsml("ps", "--no-sync", check=True).stdout.decode()
    assert "bob/team/1" in mine and "alice/team/1" not in mine and "USER" in mine.splitlines()[0]
    everyone = bob.nsml("ps", "--all-users", "--no-sync", check=True).stdout.decode()
    assert "alice/team/1" in everyone and "bob/team/1" in everyone
    only_alice = bob.nsml("ps", "--user", "alice", "--no-sync", check=True).stdout.decode()
    assert "alice/team/1" in only_alice and "bob/team/1" not in only_alice
    bob.nsml("sync", check=True)
    _wait(
        "bob's session to finish",
        lambda: bob.json("show", "team/1")["state"] == "COMPLETED",
        timeout=120,
        pause=2,
    )
    # the team leaderboard ranks both users' sessions
    board = bob.nsml("leaderboard", "--project", "team", "--metric", "loss", "--no-sync")
    text = board.stdout.decode()
    assert board.returncode == 0, board.stderr
    assert "USER" in text and "alice/team/1" in text and "bob/team/1" in text
    compare = bob.nsml("compare", "--project", "team", "--no-sync", check=True).stdout.decode()
    assert "alice/team/1" in compare and "bob/team/1" in compare

    # bad input: a user that does not exist, a session that does not: one line each
    assert "no user 'carol'" in _refused(bob.nsml("ps", "--user", "carol", "--no-sync"), code=3)
    _refused(bob.nsml("show", "alice/team/9", "--no-sync"), code=3)

    # the database itself refuses bob's direct change of alice's rows (psql, as bob)
    for statement in (
        "UPDATE session SET memo = 'pwned' WHERE owner = 'alice'",
        "DELETE FROM metric_point WHERE session_id IN "
        "(SELECT id FROM session WHERE owner = 'alice')",
    ):
        psql = bob.run("psql", "-h", "/var/run/postgresql", "-d", database, "-c", statement)
        assert psql.returncode != 0, statement
        assert b"ERROR" in psql.stderr and (
            b"row-level security" in psql.stderr or b"permission denied" in psql.stderr
        )
    assert (
        _session(alice, "team/1")["memo"] == ""
        and final["metric_points"] == _session(alice, "team/1")["metric_points"]
    )

    # alice chose private run directories: bob still sees its state and metrics, with a note
    run_dir = Path(str(final["run_dir"]))
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((run_dir / "metrics.jsonl").stat().st_mode) == 0o600
    shown = bob.nsml("show", "alice/team/1", check=True).stdout.decode()
    assert "COMPLETED" in shown and f"({2 * STEPS} points" in shown
    assert "not readable by you" in shown
    _refused(bob.nsml("logs", "alice/team/1"), code=4)  # one line: permission denied
    assert bob.nsml("sync", check=True).returncode == 0
    # alice removes her own session, purging its run directory
    removed = alice.nsml("rm", "--purge", "team/1", check=True).stdout.decode()
    assert "deleted" in removed and not Path(str(final["run_dir"])).exists()


def test_alice_and_bob_on_one_shared_sqlite_catalog(slurm_sandbox: str) -> None:
    group = ensure_team_group()
    venv = team_venv()
    base = shared_folder("nsml-team-sqlite")
    catalog = base / "shared" / "catalog.db"
    subprocess.run(
        [
            str(venv / "bin" / "nsml-hpc"),
            "catalog",
            "setup-team",
            "--sqlite",
            str(catalog),
            "--group",
            group,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    members = make_members(base, venv, f"sqlite:///{catalog}", make_run_root(base))
    alice, bob = members["alice"], members["bob"]
    try:
        for member in (alice, bob):
            code = write_code(member, "proj", "train.py", TRAIN)
            member.nsml("submit", "--project", "team", "train.py", cwd=code, check=True)
        for member in (alice, bob):

            def finished(m: Member = member) -> bool:
                return bool(m.json("show", "team/1")["state"] == "COMPLETED")

            _wait(f"{member.name}'s session to finish", finished, timeout=180, pause=2)
        rows = {row["name"]: row for row in bob.json("ps", "--all-users", "--no-sync")}
        assert set(rows) == {"alice/team/1", "bob/team/1"}
        assert rows["alice/team/1"]["owner"] == "alice"
        assert "belongs to alice" in _refused(bob.nsml("memo", "alice/team/1", "bob's"))
        # a catalog bob cannot write: one line, exit 5, nothing changed
        readonly = base / "readonly"
        readonly.mkdir()
        shutil.copy(catalog, readonly / "catalog.db")
        for path in (readonly, readonly / "catalog.db"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        bob.env["NSML_HPC_CATALOG"] = f"sqlite:///{readonly / 'catalog.db'}"
        err = _refused(bob.nsml("memo", "alice/team/1", "x"), code=2)
        assert "catalog" in err and "read" in err
        err = _refused(bob.nsml("memo", "bob/team/1", "x"), code=2)
        assert "catalog" in err and "read" in err
        bob.env.pop("NSML_HPC_CATALOG")
        assert bob.json("show", "team/1", "--no-sync")["memo"] == ""
        json.dumps(rows)
    finally:
        shutil.rmtree(base, ignore_errors=True)
