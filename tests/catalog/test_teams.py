"""Teams on one catalog (SQLite and PostgreSQL): per-owner numbering and names that say whose,
every ownership refusal (one line, nothing changed), admins, a purge that never leaves a row
without its folder or a folder without its row, and syncs that ask only about the caller's
sessions (a recording stand-in backend above the seam: what sync asks and applies; the real
multi-user runs are in tests/slurm/test_teams.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text, update

from nsml_hpc.backends.fake import FakeBackend, FakeJob
from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import (
    get_session,
    mark_submitted,
    reserve_session,
    session_namer,
)
from nsml_hpc.catalog.team_models import CatalogAdmin
from nsml_hpc.config.settings import Settings
from nsml_hpc.errors import BackendError, NotFoundError, PermissionRefused, SpecError
from nsml_hpc.job.snapshot_store import PendingSnapshot
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.sessions.actions import remove_session, set_memo, stop_session
from nsml_hpc.slurm.states import SessionState
from nsml_hpc.snapshots.actions import pin_model, remove_model
from nsml_hpc.snapshots.fork import ForkRequest, fork_session
from nsml_hpc.snapshots.gc import run_gc
from nsml_hpc.snapshots.sync import refresh_session
from nsml_hpc.sync.run import LEGACY_LOST_REASON, sync
from nsml_hpc.workspace import Workspace
from tests.conftest import create_postgres_schema, drop_postgres_schema

T0 = 1_000_000.0


def slurm_of(user: str, *jobs: FakeJob) -> FakeBackend:
    """What one user's sacct/squeue answer under PrivateData=jobs: only their own jobs (the
    shipped fake cluster, one per user, holding that user's jobs)."""
    backend = FakeBackend(user=user, files=LocalFiles(), clock=lambda: T0 + 10_000)
    backend.add(*jobs)
    return backend


def asked(backend: FakeBackend) -> list[list[str]]:
    """The job ids of each sacct call."""
    return [list(call.job_ids) for call in backend.calls_to("query")]


@pytest.fixture
def team(catalog_url: str, tmp_path: Path) -> Iterator[dict[str, Workspace]]:
    """alice, bob and carol, each with a workspace on the one catalog."""
    settings = Settings(
        catalog_url=catalog_url,
        run_root=tmp_path / "runs",
        poll_floor_seconds=0.5,
        submit_grace_seconds=60.0,
    )
    people = {
        name: Workspace(settings=settings, catalog=open_catalog(catalog_url, user=name))
        for name in ("alice", "bob", "carol")
    }
    yield people
    for workspace in people.values():
        workspace.catalog.close()


def _session(
    workspace: Workspace,
    project: str = "team",
    *,
    state: str = SessionState.COMPLETED,
    job_id: str | None = None,
    snapshots: int = 0,
) -> SessionRecord:
    catalog = workspace.catalog
    runs = workspace.settings.run_root / catalog.user / project
    record = reserve_session(
        catalog,
        spec=SessionSpec(project=project, script="t.py"),
        user=catalog.user,
        run_dir_for=lambda n: str(runs / str(n)),
        is_free=lambda n: not (runs / str(n)).exists(),
        now=T0,
    )
    assert record.id is not None
    run_dir = Path(record.run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / "session.json").write_text(json.dumps({"name": record.name}))
    for step in range(snapshots):
        pending = PendingSnapshot.begin(run_dir / "snapshots", f"step-{step}")
        (pending.folder / "w.bin").write_bytes(b"w" * 10)
        pending.commit(
            step=step,
            metrics={"loss": 1.0 / (step + 1)},
            job_id="1",
            session=record.name,
            restart_count=0,
        )
    refresh_session(catalog, LocalFiles(), record.id, record.name, record.run_dir, T0)
    mark_submitted(catalog, record.id, job_id=job_id or f"{record.id}00", cluster="local", now=T0)
    with catalog.session() as db:
        db.execute(
            update(SessionRecord)
            .where(SessionRecord.id == record.id)  # type: ignore[arg-type]
            .values(state=state, ended_at=None if state == SessionState.RUNNING else T0 + 5)
        )
    return get_session(catalog, f"{catalog.user}/{record.name}")


def _snapshot(catalog: Catalog) -> list[tuple[object, ...]]:
    """Every session row and its children's counts: 'nothing changed' is this being equal."""
    with catalog.engine.connect() as conn:
        sessions = conn.execute(
            text("SELECT id, owner, name, state, reason, memo FROM session ORDER BY id")
        ).all()
        counts = [
            conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar()
            for table in ("job", "state_change", "snapshot", "lineage", "metric_point")
        ]
        pinned = conn.execute(text("SELECT tag, pinned FROM snapshot ORDER BY id")).all()
    return [*map(tuple, sessions), tuple(counts), *map(tuple, pinned)]


def test_numbers_are_per_owner_and_names_say_whose(team: dict[str, Workspace]) -> None:
    alice, bob, carol = team["alice"].catalog, team["bob"].catalog, team["carol"].catalog
    first = _session(team["alice"])
    assert session_namer(alice)(first) == "team/1"  # a one-user catalog stays short
    second = _session(team["alice"])
    bobs = _session(team["bob"])
    assert (first.number, second.number, bobs.number) == (1, 2, 1)
    assert session_namer(alice)(first) == "alice/team/1"  # now it holds another user's
    assert get_session(alice, "team/1").id == first.id  # team/1 is your own
    assert get_session(bob, "team/1").id == bobs.id
    assert get_session(bob, "alice/team/1").id == first.id
    assert get_session(carol, "team/2").id == second.id  # only one team/2: alice's
    with pytest.raises(SpecError, match="ambiguous: you have none, and alice/team/1, bob/team/1"):
        get_session(carol, "team/1")
    with pytest.raises(NotFoundError, match="dave/team/1"):
        get_session(carol, "dave/team/1")


def test_each_ownership_refusal_is_one_line_and_changes_nothing(
    team: dict[str, Workspace],
) -> None:
    alice, bob = team["alice"], team["bob"]
    running = _session(alice, state=SessionState.RUNNING)
    done = _session(alice, snapshots=2)
    before = _snapshot(bob.catalog)
    refusals: dict[str, Callable[[], object]] = {
        "stop": lambda: stop_session(bob, "alice/team/1"),
        "memo": lambda: set_memo(bob, "alice/team/2", "mine now"),
        "rm": lambda: remove_session(bob, "alice/team/2"),
        "rm --purge": lambda: remove_session(bob, "alice/team/2", purge=True),
        "model pin": lambda: pin_model(bob, "alice/team/2", "step-0", True),
        "model rm": lambda: remove_model(bob, "alice/team/2", "step-0"),
        "fork": lambda: fork_session(bob, ForkRequest(parent="alice/team/2")),
        "gc": lambda: run_gc(bob, apply=True, user="alice"),
    }
    for action, attempt in refusals.items():
        with pytest.raises(PermissionRefused) as refused:
            attempt()
        message = str(refused.value)
        assert "\n" not in message, action
        assert "alice" in message and "nothing was changed" in message, action
        assert _snapshot(bob.catalog) == before, action
    assert Path(done.run_dir).is_dir() and Path(running.run_dir).is_dir()
    assert len(list(Path(done.run_dir, "snapshots").iterdir())) == 2


def test_a_catalog_admin_may_act_on_everyones_sessions(team: dict[str, Workspace]) -> None:
    _session(team["alice"])
    with team["alice"].catalog.session() as db:
        db.add(CatalogAdmin(name="carol"))
    set_memo(team["carol"], "alice/team/1", "checked by carol")
    assert get_session(team["alice"].catalog, "team/1").memo == "checked by carol"
    with pytest.raises(PermissionRefused):
        set_memo(team["bob"], "alice/team/1", "not bob")


class Failing:
    """LocalFiles whose rename or delete fails as a full disk or a dropped link would."""

    def __init__(self, fail: str) -> None:
        self.inner = LocalFiles()
        self.fail = fail

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def rename(self, source: str, target: str) -> None:
        if self.fail == "rename":
            raise BackendError(f"cannot rename {source}: Permission denied")
        self.inner.rename(source, target)

    def remove_tree(self, path: str, *, inside: str) -> None:
        if self.fail == "remove":
            raise BackendError(f"cannot delete {path}: Input/output error")
        self.inner.remove_tree(path, inside=inside)


def _with_files(workspace: Workspace, files: object) -> None:
    backend = FakeBackend(user=workspace.catalog.user, files=files)  # type: ignore[arg-type]
    workspace.use_backend("local", backend)


def test_purge_never_leaves_a_row_without_its_folder_or_a_folder_without_its_row(
    team: dict[str, Workspace],
) -> None:
    alice = team["alice"]
    record = _session(alice, snapshots=1)
    run_dir = Path(record.run_dir)
    # 1. the folder cannot be moved (no permission): nothing changes
    _with_files(alice, Failing("rename"))
    before = _snapshot(alice.catalog)
    with pytest.raises(BackendError, match="Permission denied"):
        remove_session(alice, "team/1", purge=True)
    assert _snapshot(alice.catalog) == before and run_dir.is_dir()
    # 2. the rows cannot be removed: the folder is put back where it was
    _with_files(alice, LocalFiles())
    alice.catalog.close()
    broken = open_catalog(alice.settings.catalog_url, user="alice")

    def fail(*args: object, **kwargs: object) -> None:
        raise PermissionRefused("the catalog refused the change")

    import nsml_hpc.sessions.actions as actions

    alice.catalog = broken
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(actions, "discard_session", fail)
        with pytest.raises(PermissionRefused):
            remove_session(alice, "team/1", purge=True)
    assert run_dir.is_dir() and get_session(alice.catalog, "team/1").id == record.id
    assert [p.name for p in run_dir.parent.iterdir()] == ["1"]
    # 3. the delete fails after the rows went: what is left is a temporary folder, not a
    #    run directory (the next submit clears it), and the session is gone
    _with_files(alice, Failing("remove"))
    removed = remove_session(alice, "team/1", purge=True)
    assert not removed.purged and removed.leftover is not None
    assert not run_dir.exists() and Path(removed.leftover).is_dir()
    assert Path(removed.leftover).name.startswith(".1.tmp-purge-")
    with pytest.raises(NotFoundError):
        get_session(alice.catalog, "team/1")
    # 4. and the ordinary case: row and folder both gone
    second = _session(alice)
    _with_files(alice, LocalFiles())
    assert remove_session(alice, second.name, purge=True).purged
    assert not Path(second.run_dir).exists()


def test_another_users_sync_never_marks_a_running_session_lost(
    team: dict[str, Workspace],
) -> None:
    alice, bob = team["alice"], team["bob"]
    hers = _session(alice, state=SessionState.RUNNING, job_id="501")
    _session(bob, state=SessionState.RUNNING, job_id="502")
    now = T0 + 3600  # long past the submit grace
    running = FakeJob("502", "RUNNING", None, submitted_at=T0, started_at=T0 + 1)
    bobs_slurm = slurm_of("bob", running)  # PrivateData: bob's sacct sees only 502
    for second in range(3):
        report = sync(bob.catalog, bob.settings, lambda _: bobs_slurm, now=now + second)
        assert report.errors == {}
    assert asked(bobs_slurm) and all(ids == ["502"] for ids in asked(bobs_slurm))
    mine = get_session(alice.catalog, "team/1")
    assert (mine.state, mine.reason, mine.updated_at) == (
        SessionState.RUNNING,
        None,
        hers.updated_at,
    )


def test_a_session_wrongly_marked_lost_is_repaired_by_its_owners_sync(
    team: dict[str, Workspace],
) -> None:
    alice, bob = team["alice"], team["bob"]
    hers = _session(alice, state=SessionState.LOST, job_id="601")
    with alice.catalog.session() as db:  # as an earlier version left it after bob's sync
        db.execute(
            update(SessionRecord)
            .where(SessionRecord.id == hers.id)  # type: ignore[arg-type]
            .values(reason=LEGACY_LOST_REASON)
        )
    nobody = slurm_of("bob")
    sync(bob.catalog, bob.settings, lambda _: nobody, now=T0 + 100)
    assert asked(nobody) == []  # bob's sync does not touch it
    assert get_session(alice.catalog, "team/1").state == SessionState.LOST
    done = FakeJob("601", "COMPLETED", None, submitted_at=T0, started_at=T0 + 1, ended_at=T0 + 50)
    alices_slurm = slurm_of("alice", done)
    report = sync(alice.catalog, alice.settings, lambda _: alices_slurm, now=T0 + 200)
    assert asked(alices_slurm) == [["601"]] and report.state_changes == 1
    repaired = get_session(alice.catalog, "team/1")
    assert (repaired.state, repaired.reason, repaired.ended_at) == (
        SessionState.COMPLETED,
        None,
        T0 + 50,
    )
    # a job Slurm really forgot: the owner's sync confirms it once, and then leaves it
    lost = _session(alice, state=SessionState.LOST, job_id="602")
    with alice.catalog.session() as db:
        db.execute(
            update(SessionRecord)
            .where(SessionRecord.id == lost.id)  # type: ignore[arg-type]
            .values(reason=LEGACY_LOST_REASON)
        )
    sync(alice.catalog, alice.settings, lambda _: alices_slurm, now=T0 + 300)
    confirmed = get_session(alice.catalog, "team/2")
    assert confirmed.state == SessionState.LOST
    assert confirmed.reason == f"{LEGACY_LOST_REASON} (asked as its owner alice)"
    count = len(asked(alices_slurm))
    sync(alice.catalog, alice.settings, lambda _: alices_slurm, now=T0 + 400)
    assert len(asked(alices_slurm)) == count  # not asked about again


def test_a_config_holding_a_catalog_password_must_be_private(
    tmp_path: Path, postgres_url: str
) -> None:
    # A schema of its own: the shared database's public schema may hold a catalog of any
    # revision (another checkout's tests), which this refusal must not depend on.
    schema = f"t_{uuid.uuid4().hex[:12]}"
    create_postgres_schema(postgres_url, schema)
    url = f"{postgres_url}?options=-csearch_path%3D{schema}"
    try:
        config = tmp_path / "config.toml"
        config.write_text(f"catalog = {url!r}\n")
        env = {
            **os.environ,
            "NSML_HPC_CONFIG": str(config),
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        }
        env.pop("NSML_HPC_CATALOG", None)
        for mode in (0o644, 0o640, 0o604):
            config.chmod(mode)
            done = subprocess.run(
                [str(Path(sys.executable).parent / "nsml-hpc"), "catalog", "whoami"],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
                check=False,
            )
            assert done.returncode == 2, done.stderr  # the user's setting to fix
            assert done.stderr.count("\n") == 1
            assert "holds a catalog password and is readable by others" in done.stderr
            assert f"chmod 600 {config}" in done.stderr
        config.chmod(0o600)
        done = subprocess.run(
            [str(Path(sys.executable).parent / "nsml-hpc"), "catalog", "whoami"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("you are ")
    finally:
        drop_postgres_schema(postgres_url, schema)
