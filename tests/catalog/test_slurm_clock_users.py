"""Everything that asks Slurm runs on the one Slurm clock of a user and cluster (above the
backend seam, with the shipped fake cluster counting every command): the cluster view's
sinfo/squeue at the Slurm floor and within the hourly allowance the sync spends from too,
and a user's submit, stop and sweep asking for an early query. (The sandbox paths are in
tests/slurm/test_file_first.py and tests/slurm/test_cluster_view.py.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nsml_hpc.backends.fake import FakeBackend, FakeJob
from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.catalog.slurm_clock import clock_rows
from nsml_hpc.clusters.info import cluster_overview
from nsml_hpc.config.settings import Settings
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.slurm.sinfo import NodeGpus
from nsml_hpc.sync.run import sync
from nsml_hpc.workspace import Workspace
from tests.catalog.test_sync_logic import SUBMITTED_AT, _session

SLURM_COMMANDS = ("query", "queue", "cluster_gpus", "user_queue")


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return open_catalog(f"sqlite:///{tmp_path / 'c.db'}")


def _workspace(catalog: Catalog, tmp_path: Path) -> tuple[Workspace, FakeBackend]:
    """The default clock: Slurm every 60 s, 5 s after an action, 60 commands an hour."""
    settings = Settings(catalog_url="unused", run_root=tmp_path, submit_grace_seconds=60.0)
    workspace = Workspace(settings=settings, catalog=catalog)
    backend = FakeBackend(
        files=LocalFiles(),
        clock=lambda: SUBMITTED_AT,
        nodes=[NodeGpus("vm", "debug", True, "mixed", 2, 8, 4, 1, ())],
    )
    workspace.use_backend("local", backend)
    return workspace, backend


def _slurm_commands(backend: FakeBackend) -> int:
    return sum(backend.count(method) for method in SLURM_COMMANDS)


def test_the_cluster_view_asks_at_the_slurm_floor_not_the_action_floor(
    catalog: Catalog, tmp_path: Path
) -> None:
    workspace, backend = _workspace(catalog, tmp_path)
    first = cluster_overview(workspace, "local", user="alice", now=SUBMITTED_AT)
    assert first.asked and backend.count("cluster_gpus") == backend.count("user_queue") == 1
    for second in (5, 10, 30, 59):  # past the 5 s action floor, inside the 60 s Slurm floor
        again = cluster_overview(workspace, "local", user="alice", now=SUBMITTED_AT + second)
        assert not again.asked and again.fetched_at == SUBMITTED_AT
    assert backend.count("cluster_gpus") == 1
    assert cluster_overview(workspace, "local", user="alice", now=SUBMITTED_AT + 60).asked
    # A user's refresh asks once the action floor has passed, and spends as well.
    assert not cluster_overview(
        workspace, "local", user="alice", now=SUBMITTED_AT + 62, explicit=True
    ).asked
    assert cluster_overview(
        workspace, "local", user="alice", now=SUBMITTED_AT + 65, explicit=True
    ).asked
    row = clock_rows(catalog, catalog.user)["local"]
    assert row.commands == 6 == _slurm_commands(backend)  # three sinfo + squeue, all spent


def _an_hour_with_the_cluster_view_open(
    catalog: Catalog, tmp_path: Path, *, pending: bool
) -> tuple[FakeBackend, Workspace, int, list[str], int]:
    """A cluster screen refreshed every 10 s (several views open at once), a user pressing
    refresh every 5 minutes, and the TUI's sync every 2 s of one session (waiting, or running
    with a live wrapper): (backend, workspace, view answers asked, held back, sync queries)."""
    workspace, backend = _workspace(catalog, tmp_path)
    name = _session(catalog, tmp_path, "7")
    run_dir = Path(get_session(catalog, name).run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    backend.add(
        FakeJob("7", "PENDING", "Resources", submitted_at=SUBMITTED_AT)
        if pending
        else FakeJob("7", "RUNNING", submitted_at=SUBMITTED_AT, started_at=SUBMITTED_AT + 1)
    )
    events = run_dir / "events.jsonl"
    asked, held_back, synced = 0, [], 0
    for second in range(0, 3600, 2):
        now = SUBMITTED_AT + second
        if not pending:  # the wrapper's start, then its heartbeat
            kind = "started" if second == 0 else "alive"
            line = {"event": kind, "time": now, "job_id": "7", "host": "vm", "heartbeat": 15}
            if kind == "started" or second % 14 == 0:
                with events.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(line) + "\n")
        report = sync(catalog, workspace.settings, lambda _c: backend, now=now)
        synced += len(report.queried)
        if second % 10:
            continue
        explicit = second % 300 == 150
        view = cluster_overview(workspace, "local", user="alice", now=now, explicit=explicit)
        asked += view.asked
        if view.held_back:
            assert view.asked or (view.fetched_at is not None and view.fetched_at < now)
            held_back.append(view.held_back)
    assert get_session(catalog, name).state == ("PENDING" if pending else "RUNNING")
    return backend, workspace, asked, held_back, synced


@pytest.mark.parametrize("pending", [False, True], ids=["running", "waiting"])
def test_a_cluster_view_left_open_for_an_hour_stays_within_the_ceiling_with_the_sync(
    catalog: Catalog, tmp_path: Path, pending: bool
) -> None:
    """One hour holds at most ``queries_per_hour`` Slurm commands in all; the view is served
    from the catalog (saying how old its data is, why, and about when it can be renewed) when
    the allowance is short; the sessions' own sync is never starved by the view."""
    backend, workspace, asked, held_back, synced = _an_hour_with_the_cluster_view_open(
        catalog, tmp_path, pending=pending
    )
    policy = workspace.settings.slurm_policy
    assert policy.queries_per_hour == 60
    assert _slurm_commands(backend) <= policy.queries_per_hour, backend.calls
    assert clock_rows(catalog, catalog.user)["local"].commands == _slurm_commands(backend)
    assert any("hourly Slurm allowance (60 commands) spent; next in about" in h for h in held_back)
    if pending:
        # A waiting session alone wants more than the ceiling (sacct every floor, squeue for
        # its reason): the sync takes each command as the allowance refills, and the view,
        # after its first answer, is served from the catalog, saying why and until when.
        assert asked >= 1 and synced >= 40, (asked, synced)
    else:  # confirmed every four floors: the rest of the allowance renews the view
        assert asked >= 15 and synced >= 10, (asked, synced)


def test_submit_stop_and_sweep_ask_slurm_soon(workspace: Workspace, project_dir: Path) -> None:
    backend = FakeBackend(files=LocalFiles())
    workspace.use_backend("local", backend)
    (project_dir / "train.py").write_text("print('hello')\n", encoding="utf-8")

    def wanted() -> tuple[float, str | None]:
        row = clock_rows(workspace.catalog, workspace.catalog.user)["local"]
        return row.wanted_at, row.wanted_why

    before = time.time()
    done = workspace.submit(
        workspace.prepare(SessionSpec(project="clock", script="train.py"), project_dir)
    )
    at, why = wanted()
    assert at >= before and why == f"{done.name} submitted"
    before = time.time()
    assert workspace.stop(done.name) == [done.job_id]
    at, why = wanted()
    assert at >= before and why == f"{done.name} stopped"
    before = time.time()
    spec = SessionSpec(project="clock", script="train.py", args=["--lr", "0.1"])
    swept = workspace.sweep(workspace.prepare(spec, project_dir), [{"lr": "0.1"}, {"lr": "0.2"}])
    at, why = wanted()
    assert at >= before and why == f"sweep {swept.name} submitted"
