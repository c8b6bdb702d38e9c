"""The TUI's reads, on SQLite AND PostgreSQL: the windowed session query (filter, sort,
group, page), metric summaries and blocks (kept by ingestion, filled once for old catalogs),
downsampled series, compare, memo edits, and the cluster overview's shared floor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select
from sqlmodel import col

from nsml_hpc.backends.fake import FakeBackend
from nsml_hpc.catalog import series as series_module
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.models import CatalogMeta, MetricPoint, SessionRecord
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.series import bucketed_series, metric_series
from nsml_hpc.catalog.sessions import get_session, update_memo
from nsml_hpc.catalog.summaries import BACKFILL_KEY, metric_names, summaries_of
from nsml_hpc.catalog.summary_models import MetricBlock, MetricSummary
from nsml_hpc.clusters.info import cluster_overview
from nsml_hpc.config.settings import Settings
from nsml_hpc.errors import BackendError, NotFoundError
from nsml_hpc.experiments.compare import compare_sessions
from nsml_hpc.sessions.query import (
    SessionQuery,
    count_sessions,
    matching_names,
    project_counts,
    session_clusters,
    session_page,
)
from nsml_hpc.sessions.views import JSON_FIELDS, session_rows
from nsml_hpc.workspace import Workspace
from tests.tui.conftest import NOW, build_catalog


@pytest.fixture
def filled(catalog_url: str, tmp_path: Path) -> Iterator[Catalog]:
    catalog = open_catalog(catalog_url, user="alice")  # alice's sessions (user: filters owners)
    build_catalog(catalog, tmp_path / "runs")
    yield catalog
    catalog.close()


def _names(catalog: Catalog, query: SessionQuery, offset: int = 0, limit: int = 100) -> list[str]:
    return [row.name for row in session_page(catalog, query, offset, limit, now=NOW)]


def test_newest_first_by_default_with_count_and_pages(filled: Catalog) -> None:
    query = SessionQuery(key_metric="val_loss")
    assert count_sessions(filled, query) == 6
    names = _names(filled, query)
    assert names == ["cifar/2", "cifar/1", "mnist/4", "mnist/3", "mnist/2", "mnist/1"]
    assert _names(filled, query, offset=2, limit=2) == ["mnist/4", "mnist/3"]
    assert session_clusters(filled) == ["local"]


def test_filters_by_text_fields_and_negation(filled: Catalog) -> None:
    def names(text: str) -> set[str]:
        query = SessionQuery(filter_text=text)
        found = set(_names(filled, query))
        assert count_sessions(filled, query) == len(found)
        assert set(matching_names(filled, query)) == found
        return found

    assert names("state:run") == {"mnist/2", "cifar/1"}
    assert names("state:run,pend") == {"mnist/2", "mnist/3", "cifar/1"}
    assert names("mnist -state:completed") == {"mnist/2", "mnist/3", "mnist/4"}
    assert names("memo:base") == {"mnist/1"}
    assert names("-memo:run") == {"mnist/1", "mnist/2", "mnist/3", "mnist/4", "cifar/2"}
    assert names("resources") == {"mnist/3"}  # the pending reason
    assert names("project:cif user:ali") == {"cifar/1", "cifar/2"}
    assert names("100%") == set()  # LIKE wildcards are literal
    assert names("_") == set()


def test_sorting_by_metrics_elapsed_and_name(filled: Catalog) -> None:
    base = SessionQuery(key_metric="val_loss")
    best = _names(filled, replace(base, sort="best", descending=False))
    assert best[0] == "cifar/1" and best[-1] == "mnist/3"  # no metric: last either way
    assert _names(filled, replace(base, sort="best", descending=True))[-1] == "mnist/3"
    rows = session_page(filled, replace(base, sort="last", descending=False), 0, 10, now=NOW)
    lasts = [row.key_last for row in rows if row.key_last is not None]
    assert lasts == sorted(lasts)
    elapsed = session_page(filled, replace(base, sort="elapsed"), 0, 10, now=NOW)
    assert [row.name for row in elapsed[:2]] == ["cifar/1", "mnist/2"]  # running longest
    assert elapsed[0].elapsed_s == pytest.approx(NOW - (1_790_000_000.0 + 30 * 60))
    assert _names(filled, replace(base, sort="name", descending=False))[:2] == [
        "cifar/1",
        "cifar/2",
    ]
    accuracy = replace(base, key_metric="val_acc", sort="best", descending=True)
    assert _names(filled, accuracy)[0] == "cifar/1"


def test_ps_and_the_table_page_build_one_row_model_with_one_elapsed_rule(
    filled: Catalog,
) -> None:
    """``ps`` (and ``--json``) and the TUI's table show the same SessionRow of a session; the
    table adds its key metric, ps the job ids and GPU figures; elapsed advances alike."""
    listed = {row.name: row for row in session_rows(filled, now=NOW)}
    page = session_page(filled, SessionQuery(key_metric="val_loss"), 0, 100, now=NOW)
    assert sorted(row.name for row in page) == sorted(listed)
    for row in page:
        ps = listed[row.name]
        as_ps = replace(
            row,
            key_last=None,
            key_best=None,
            key_best_step=None,
            job_ids=ps.job_ids,
            gpu_util=ps.gpu_util,
            gpu_idle_s=ps.gpu_idle_s,
            requeues=ps.requeues,
            hyperparameters=ps.hyperparameters,  # ps shows them (ps --column), the table not
        )
        assert as_ps == ps
        assert row.elapsed_at(NOW + 90) == ps.elapsed_at(NOW + 90)
        assert set(ps.to_json()) == {*JSON_FIELDS, "state_text", "hyperparameters"}
    running = listed["cifar/1"]
    assert running.elapsed_at(NOW + 90) == pytest.approx((running.elapsed_s or 0) + 90)
    assert listed["mnist/1"].elapsed_at(NOW + 90) == listed["mnist/1"].elapsed_s  # ended
    with filled.session() as db:  # Slurm counted more than the wall clock since the start
        record = db.get(SessionRecord, listed["mnist/2"].id)
        assert record is not None
        record.elapsed_s = 5 * 3600.0
        db.add(record)
    by_elapsed = session_page(filled, SessionQuery(sort="elapsed"), 0, 100, now=NOW)
    assert by_elapsed[0].name == "mnist/2" and by_elapsed[0].elapsed_s == 5 * 3600.0
    shown = [row.elapsed_s for row in by_elapsed if row.elapsed_s is not None]
    assert shown == sorted(shown, reverse=True)  # the sort is the column as shown


def test_grouping_orders_by_project_and_counts_groups(filled: Catalog) -> None:
    query = SessionQuery(group_by_project=True)
    assert project_counts(filled, query) == [("cifar", 2), ("mnist", 4)]
    assert _names(filled, query)[:3] == ["cifar/2", "cifar/1", "mnist/4"]
    assert project_counts(filled, replace(query, filter_text="state:run")) == [
        ("cifar", 1),
        ("mnist", 1),
    ]


def test_summaries_agree_with_the_points(filled: Catalog) -> None:
    session_id = get_session(filled, "cifar/1").id
    assert session_id is not None
    summary = summaries_of(filled, [session_id], ["val_loss"])[(session_id, "val_loss")]
    with filled.session() as db:
        low, high, count = db.execute(
            select(func.min(MetricPoint.value), func.max(MetricPoint.value), func.count()).where(
                col(MetricPoint.session_id) == session_id, col(MetricPoint.name) == "val_loss"
            )
        ).one()
    assert (summary.min_value, summary.max_value, summary.points) == (low, high, count)
    assert summary.last_step == 39
    assert metric_names(filled) == ["train_loss", "val_acc", "val_loss"]
    assert metric_names(filled, []) == []


def test_an_old_catalog_gets_its_summaries_filled_once(catalog_url: str, filled: Catalog) -> None:
    before = {k: vars(v) for k, v in summaries_of(filled, list(range(1, 10))).items()}
    with filled.session() as db:
        db.execute(delete(MetricSummary))
        db.execute(delete(MetricBlock))
        db.execute(delete(CatalogMeta).where(col(CatalogMeta.key) == BACKFILL_KEY))
    reopened = open_catalog(catalog_url)
    try:
        after = {k: vars(v) for k, v in summaries_of(reopened, list(range(1, 10))).items()}
        assert after == before
        with reopened.session() as db:
            assert db.get(CatalogMeta, BACKFILL_KEY) is not None
    finally:
        reopened.close()


def test_block_series_shows_the_same_envelope_as_the_points(
    filled: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = get_session(filled, "cifar/1").id
    assert session_id is not None
    raw = metric_series(filled, session_id, "val_loss", 200)
    assert (raw.points, raw.downsampled, len(raw.xs)) == (40, False, 40)
    monkeypatch.setattr(series_module, "RAW_LIMIT", 0)
    from_blocks = metric_series(filled, session_id, "val_loss", 200)
    assert from_blocks.downsampled
    assert (min(from_blocks.ys), max(from_blocks.ys)) == (min(raw.ys), max(raw.ys))
    in_sql = bucketed_series(filled, session_id, "val_loss", 10)
    assert len(in_sql.xs) <= 20
    assert (min(in_sql.ys), max(in_sql.ys)) == (min(raw.ys), max(raw.ys))
    assert metric_series(filled, session_id, "nope", 10).xs == []


def test_compare_lists_differing_hyperparameters_and_bests(filled: Catalog) -> None:
    comparison = compare_sessions(filled, ["mnist/1", "mnist/2", "mnist/3"])
    assert comparison.differing == {
        "amp": {"mnist/1": None, "mnist/2": None, "mnist/3": True},
        "lr": {"mnist/1": 0.1, "mnist/2": 0.05, "mnist/3": 0.2},
    }
    assert comparison.common == {"epochs": 30}
    assert comparison.best_session("val_loss") == "mnist/1"
    assert comparison.best_session("val_acc") == "mnist/1"
    assert "mnist/3" not in comparison.metrics["val_loss"]
    rows = comparison.to_rows()
    assert rows[0]["session"] == "mnist/1" and rows[0]["lr"] == 0.1
    with pytest.raises(NotFoundError):
        compare_sessions(filled, ["mnist/1", "mnist/99"])


def test_memo_update(filled: Catalog) -> None:
    session_id = get_session(filled, "mnist/2").id
    assert session_id is not None
    update_memo(filled, session_id, "lr sweep", now=NOW)
    assert get_session(filled, "mnist/2").memo == "lr sweep"
    with pytest.raises(NotFoundError):
        update_memo(filled, 99_999, "x", now=NOW)


def test_cluster_overview_asks_once_per_floor_and_keeps_data_when_down(
    filled: Catalog, catalog_url: str, tmp_path: Path
) -> None:
    from nsml_hpc.slurm.sinfo import NodeGpus

    settings = Settings(catalog_url=catalog_url, run_root=tmp_path, poll_floor_seconds=5.0)
    workspace = Workspace(settings=settings, catalog=filled)
    backend = FakeBackend(nodes=[NodeGpus("vm", "debug", True, "idle", 0, 8, 4, 0)])
    workspace.use_backend("local", backend)
    first = cluster_overview(workspace, "local", user="alice", now=1000.0)
    assert first.asked and first.partitions[0].gpus_idle == 4 and first.error is None
    second = cluster_overview(workspace, "local", user="alice", now=1002.0)
    assert not second.asked and second.partitions == first.partitions
    assert backend.count("cluster_gpus") == 1
    failure = BackendError("sinfo failed on local: Unable to contact slurm controller")
    backend.fail("cluster_gpus", error=failure)
    down = cluster_overview(workspace, "local", user="alice", now=1060.0)  # a Slurm floor
    assert down.asked and down.error and "Unable to contact" in down.error
    assert down.fetched_at == 1000.0 and down.partitions == first.partitions
    backend.recover()
    back = cluster_overview(workspace, "local", user="alice", now=1120.0)
    assert back.error is None and back.fetched_at == 1120.0
