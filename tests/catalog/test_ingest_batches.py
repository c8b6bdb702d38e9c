"""Metric points reach the catalog in multi-row INSERTs: every point exactly once, in file
order, whatever the batch size and the database's limit on parameters per statement."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from nsml_hpc.catalog import metrics
from nsml_hpc.catalog.metrics import CursorState, load_cursors, store_metric_batch
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import mark_submitted, reserve_session
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.runfiles.scrape import parse_metric_lines


@pytest.mark.parametrize(("lines", "per"), [(1, 1000), (7, 3), (250, 7), (250, 1000), (12, 4)])
def test_every_point_is_stored_once_in_order(
    lines: int, per: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "POINTS_PER_STATEMENT", per)
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    record = reserve_session(
        catalog,
        spec=SessionSpec(project="ingest", script="t.py"),
        user="alice",
        run_dir_for=lambda n: str(tmp_path / str(n)),
        is_free=lambda _n: True,
        now=time.time(),
    )
    assert record.id is not None
    mark_submitted(catalog, record.id, job_id="1", cluster="local", now=time.time())
    body = "".join(
        json.dumps({"step": step, "time": 1.0 + step, "loss": step / 3, "acc": None, "n": step})
        + "\n"
        for step in range(lines)
    ).encode()
    batch = parse_metric_lines(body, 0, record.id)
    store_metric_batch(catalog, record.id, batch, CursorState(), len(body), time.time())
    with catalog.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT line, step, time, name, value FROM metric_point ORDER BY id")
        ).all()
    expected = [
        (line, line, 1.0 + line, name, value)
        for line in range(lines)
        for name, value in (("loss", line / 3), ("n", float(line)))
    ]
    assert [tuple(row) for row in rows] == expected
    assert load_cursors(catalog, [record.id])[(record.id, "metrics.jsonl")].offset == len(body)
    catalog.close()


def test_rows_per_statement_follow_the_sqlite_parameter_limit(tmp_path: Path) -> None:
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    with catalog.engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # an old SQLite's limit
        assert metrics._points_per_statement(conn) == 166
    catalog.close()
