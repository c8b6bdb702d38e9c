"""The catalog on SQLite AND on a real PostgreSQL server: numbering, atomic ingestion,
the shared poll floor, schema versioning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import (
    CursorState,
    load_cursors,
    metric_lines,
    store_metric_batch,
)
from nsml_hpc.catalog.polls import claim_poll
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import (
    discard_session,
    get_session,
    list_sessions,
    live_sessions,
    mark_submitted,
    reserve_session,
)
from nsml_hpc.errors import CatalogError, NotFoundError, SettingsError
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.runfiles.scrape import parse_metric_lines


def _reserve(catalog: Catalog, project: str = "mnist", taken: set[int] | None = None) -> int:
    taken = taken or set()
    record = reserve_session(
        catalog,
        spec=SessionSpec(project=project, script="train.py", args=["--lr", "0.1"]),
        user="alice",
        run_dir_for=lambda n: f"/runs/alice/{project}/{n}",
        is_free=lambda n: n not in taken,
        now=1000.0,
    )
    assert record.id is not None
    return record.id


def test_session_numbers_increase_per_project(catalog: Catalog) -> None:
    first = _reserve(catalog)
    second = _reserve(catalog)
    other = _reserve(catalog, project="cifar")
    for session_id, job in ((first, "11"), (second, "12"), (other, "13")):
        mark_submitted(catalog, session_id, job_id=job, cluster="local", now=1001.0)
    names = sorted(record.name for record in list_sessions(catalog))
    assert names == ["cifar/1", "mnist/1", "mnist/2"]


def test_a_number_whose_run_directory_exists_is_skipped(catalog: Catalog) -> None:
    session_id = _reserve(catalog, taken={1, 2})
    mark_submitted(catalog, session_id, job_id="7", cluster="local", now=1001.0)
    assert get_session(catalog, "mnist/3").id == session_id


def test_reserved_but_unsubmitted_sessions_are_invisible(catalog: Catalog) -> None:
    _reserve(catalog)
    assert list_sessions(catalog) == []
    with pytest.raises(NotFoundError):
        get_session(catalog, "mnist/1")


def test_discarding_a_session_removes_every_row(catalog: Catalog) -> None:
    session_id = _reserve(catalog)
    mark_submitted(catalog, session_id, job_id="5", cluster="local", now=1001.0)
    chunk = b'{"step":1,"time":1.0,"loss":0.5}\n'
    batch = parse_metric_lines(chunk, 0, session_id)
    store_metric_batch(catalog, session_id, batch, CursorState(), len(chunk), 1002.0)
    discard_session(catalog, session_id)
    assert list_sessions(catalog) == []
    assert load_cursors(catalog, [session_id]) == {}
    assert metric_lines(catalog, session_id) == []


def test_metric_batch_and_cursor_move_together(catalog: Catalog) -> None:
    session_id = _reserve(catalog)
    mark_submitted(catalog, session_id, job_id="5", cluster="local", now=1001.0)
    lines = [{"step": i, "time": 10.0 + i, "loss": 1.0 / (i + 1), "acc": i / 10} for i in range(10)]
    chunk = "".join(json.dumps(line) + "\n" for line in lines).encode()
    batch = parse_metric_lines(chunk, 0, session_id)
    store_metric_batch(catalog, session_id, batch, CursorState(), len(chunk), 1002.0)
    assert metric_lines(catalog, session_id) == lines
    cursor = load_cursors(catalog, [session_id])[(session_id, "metrics.jsonl")]
    assert (cursor.offset, cursor.lines, cursor.malformed) == (len(chunk), 10, 0)
    record = get_session(catalog, "mnist/1")
    assert record.last_step == 9
    assert json.loads(record.last_metrics_json) == {"loss": 0.1, "acc": 0.9}


def test_a_failed_batch_leaves_neither_points_nor_a_moved_cursor(catalog: Catalog) -> None:
    session_id = _reserve(catalog)
    mark_submitted(catalog, session_id, job_id="5", cluster="local", now=1001.0)
    chunk = b'{"step":1,"loss":0.5}\n'
    batch = parse_metric_lines(chunk, 0, session_id)
    batch.points.append((session_id, 1, None, None, None, 1.0))  # type: ignore[arg-type]
    with pytest.raises(CatalogError):
        store_metric_batch(catalog, session_id, batch, CursorState(), len(chunk), 1002.0)
    assert metric_lines(catalog, session_id) == []
    assert load_cursors(catalog, [session_id]) == {}


def test_poll_floor_is_shared_and_compare_and_set(catalog: Catalog) -> None:
    assert claim_poll(catalog, "local", now=100.0, floor=5.0)
    assert not claim_poll(catalog, "local", now=103.0, floor=5.0)
    assert claim_poll(catalog, "other", now=103.0, floor=5.0)
    assert claim_poll(catalog, "local", now=105.0, floor=5.0)


def test_live_sessions_exclude_finished_ones(catalog: Catalog) -> None:
    running = _reserve(catalog)
    mark_submitted(catalog, running, job_id="1", cluster="local", now=1001.0)
    assert [record.id for record in live_sessions(catalog, now=1002.0)] == [running]


def test_sqlite_catalog_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    catalog = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    with catalog.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    catalog.close()


def test_an_invalid_catalog_url_is_one_clear_error() -> None:
    with pytest.raises(SettingsError, match="invalid catalog URL"):  # the user's setting: exit 2
        open_catalog("not a url")
