"""The front-end face over a real catalog (SQLite and PostgreSQL): each Workspace operation
answers what its feature function answers, and a ``with`` block closes what it opened."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nsml_hpc.backends.fake import FakeBackend
from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.config.settings import Settings
from nsml_hpc.errors import NotFoundError, SpecError
from nsml_hpc.sessions.query import SessionQuery
from nsml_hpc.sessions.views import session_detail, session_rows
from nsml_hpc.sync.run import SyncReport
from nsml_hpc.workspace import Workspace
from tests.tui.conftest import NOW, build_catalog


@pytest.fixture
def world(catalog_url: str, tmp_path: Path) -> Iterator[tuple[Workspace, FakeBackend]]:
    settings = Settings(catalog_url=catalog_url, run_root=tmp_path / "runs", key_metric=None)
    workspace = Workspace.open(settings)
    build_catalog(workspace.catalog, tmp_path / "runs")
    backend = FakeBackend(files=LocalFiles())  # the run directories are local
    workspace.use_backend("local", backend)
    with workspace:
        yield workspace, backend
    assert backend.count("close") == 1  # leaving the block closed the backend (and the catalog)


def test_listing_and_showing_are_the_views_functions(
    world: tuple[Workspace, FakeBackend],
) -> None:
    ws, _ = world
    rows = ws.sessions()
    assert [row.name for row in rows] == [row.name for row in session_rows(ws.catalog)]
    assert [row.name for row in ws.sessions(project="cifar", limit=1)] == ["cifar/2"]
    assert ws.session("mnist/2").state == "RUNNING" and ws.session("mnist/2").job_ids == ["101"]
    detail = ws.show("mnist/1", now=NOW)
    assert detail == session_detail(ws.catalog, "mnist/1", now=NOW)
    with pytest.raises(NotFoundError):
        ws.session("mnist/99")
    query = SessionQuery(filter_text="state:run", key_metric="val_loss")
    assert ws.count_sessions(query) == 2
    assert {row.name for row in ws.session_page(query, 0, 10, now=NOW)} == {"mnist/2", "cifar/1"}
    assert ws.project_counts(query) == [("cifar", 1), ("mnist", 1)]
    assert sorted(ws.matching_names(query)) == ["cifar/1", "mnist/2"]
    assert ws.session_clusters() == ["local"]


def test_metrics_compare_and_ranking_go_by_session_name(
    world: tuple[Workspace, FakeBackend],
) -> None:
    ws, _ = world
    assert ws.metric_names("mnist/1") == ["train_loss", "val_acc", "val_loss"]
    assert ws.key_metric(ws.metric_names()) == "val_loss"
    series = ws.metric_series("mnist/1", "val_loss", 20)
    assert series.points == 30 and len(series.xs) <= 40
    comparison = ws.compare(["mnist/1", "mnist/2"])
    assert comparison.goals["val_loss"] == "min" and comparison.goals["val_acc"] == "max"
    assert ws.ranking_goal("val_acc:min") == ("val_acc", "min")
    standings = ws.leaderboard("mnist", "val_loss")
    assert [s.session for s in standings][:1] == ["mnist/1"]


def test_actions_reach_the_backend_and_the_catalog(
    world: tuple[Workspace, FakeBackend],
) -> None:
    ws, backend = world
    assert ws.stop("cifar/1") == ["104"] and backend.cancelled == ["104"]
    with pytest.raises(SpecError, match="already COMPLETED"):
        ws.stop("mnist/1")
    ws.set_memo("cifar/2", "through the face")
    assert ws.session("cifar/2").memo == "through the face"
    assert [row.tag for row in ws.snapshots("mnist/1")] == ["ep10", "ep20", "best", "ep30"]
    ws.pin_snapshot("mnist/1", "ep10")
    assert "pinned" in ws.snapshots("mnist/1")[0].flags
    report = SyncReport(queried=["local"], errors={"local": "sacct: connection refused"})
    assert ws.unreachable_clusters(report) == {"local": "sacct: connection refused"}
    assert ws.log_paths("mnist/2")[-1].endswith("slurm-101.out")
    assert b"starting mnist/2" in b"".join(ws.read_logs("mnist/2"))
