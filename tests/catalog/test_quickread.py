"""The login node's fast path (:mod:`nsml_hpc.catalog.quickread`) gives exactly what the full
catalog path gives: the same ``ps`` rows for every filter, the same ``show`` detail for every
session, over a catalog with varied sessions (states, owners, a sweep, a multi-node launch,
requeues, snapshots, a fork, a dataset, live hyperparameter changes, GPU samples, refused
lines); and it steps aside (None, or Fallback) whenever it cannot answer exactly."""

from __future__ import annotations

import getpass
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nsml_hpc.catalog import open_catalog
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.hparam_events import TAKEN
from nsml_hpc.catalog.migrations import HEAD
from nsml_hpc.catalog.quickread import REVISION, TASK_EVENTS, Fallback, QuickReader, open_quick
from nsml_hpc.sessions import nodes
from nsml_hpc.sessions.views import session_detail, session_rows

ME = getpass.getuser()
NOW = 1_800_000_000.0
STATES = ["RUNNING", "PENDING", "COMPLETED", "FAILED", "CANCELLED", "REQUEUED", "TIMEOUT", "LOST"]


def _session(index: int, **over: Any) -> dict[str, Any]:
    project = ("mnist", "cifar", "gpt")[index % 3]
    number = index // 3 + 1
    state = STATES[index % len(STATES)]
    row: dict[str, Any] = {
        "name": f"{project}/{number}",
        "project": project,
        "number": number,
        "user": "alice" if index % 4 else ME,
        "owner": ME if index % 5 else "bob",
        "cluster": ("local", "duo")[index % 2],
        "state": state,
        "reason": "Resources" if state == "PENDING" else None,
        "exit_code": 3 if state == "FAILED" else None,
        "run_dir": f"/runs/{project}/{number}",
        "spec_json": json.dumps(
            {"project": project, "script": "t.py", "args": [], "resources": {"gpus": 1}}
        ),
        "hyperparameters_json": json.dumps({"lr": 0.1 * (index % 3 + 1), "seed": index}),
        "memo": f"memo {index}" if index % 4 == 0 else "",
        "gpus": index % 3,
        "created_at": NOW - 1000 * index,
        "submitted_at": NOW - 1000 * index + 1,
        "started_at": None if state == "PENDING" else NOW - 1000 * index + 5,
        "ended_at": NOW - 10 * index if state in ("COMPLETED", "FAILED", "CANCELLED") else None,
        "elapsed_s": 42.0 if index % 2 else None,
        "last_step": index * 10 if index % 3 else None,
        "last_metrics_json": json.dumps({"loss": 1.0 / (index + 1)}),
        "metric_count": index * 3,
        "malformed_lines": 0,
        "updated_at": NOW,
    }
    row.update(over)
    return row


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
    columns = ", ".join(f'"{name}"' for name in row)
    marks = ", ".join("?" * len(row))
    cursor = conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values()))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _fill(path: Path) -> None:
    conn = sqlite3.connect(path)
    ids = [_insert(conn, "session", _session(index)) for index in range(24)]
    # a sweep of 4 (one creation time, array job ids), and a PREPARING row nobody lists
    sweep_ids = [
        _insert(
            conn,
            "session",
            _session(
                100 + k,
                name=f"sweepy/{k + 1}",
                project="sweepy",
                number=k + 1,
                owner=ME,
                created_at=NOW - 5,
                hyperparameters_json=json.dumps({"lr": 0.01 * (k + 1)}),
            ),
        )
        for k in range(4)
    ]
    _insert(conn, "session", _session(200, state="PREPARING", name="mnist/99", number=99))
    # a multi-node session with task events
    spec = {"project": "gpt", "script": "t.py", "args": [], "resources": {"gpus": 4, "nodes": 2}}
    multi = _insert(
        conn,
        "session",
        _session(
            300,
            name="gpt/77",
            project="gpt",
            number=77,
            owner=ME,
            state="RUNNING",
            spec_json=json.dumps(spec),
            gpus=8,
        ),
    )
    for session_id in [*ids, *sweep_ids, multi]:
        jobs = 2 if session_id % 3 == 0 else 1
        for j in range(jobs):
            job_id = (
                f"900{j}_{session_id}"
                if session_id in sweep_ids
                else str(1000 + session_id * 10 + j)
            )
            row_id = _insert(
                conn,
                "job",
                {
                    "session_id": session_id,
                    "cluster": "local",
                    "job_id": job_id,
                    "state": "COMPLETED" if j == 0 and jobs == 2 else "RUNNING",
                    "reason": None,
                    "exit_code": 0 if j == 0 else None,
                    "submitted_at": NOW - 100,
                    "started_at": NOW - 90,
                    "ended_at": None,
                    "elapsed_s": 5.0,
                    "node_list": "duo[1-2]" if session_id == multi else "vm",
                },
            )
            if session_id % 2 == 0:
                _insert(
                    conn,
                    "job_allocation",
                    {
                        "job_row_id": row_id,
                        "partition": "gpu",
                        "account": None,
                        "qos": "normal",
                        "gpus": 2,
                        "time_limit": "1:00:00",
                        "nodes": 1,
                        "complete": 1,
                    },
                )
        _insert(
            conn,
            "state_change",
            {
                "session_id": session_id,
                "at": NOW - 50,
                "state": "RUNNING",
                "reason": None,
                "job_id": None,
            },
        )
        _insert(
            conn,
            "event",
            {
                "session_id": session_id,
                "at": NOW - 40,
                "kind": "started",
                "job_id": None,
                "data_json": json.dumps({"host": "vm", "nodes": "duo[1-2]"}),
            },
        )
    for node, host in enumerate(("duo1", "duo2")):
        _insert(
            conn,
            "event",
            {
                "session_id": multi,
                "at": NOW - 30,
                "kind": "task_started",
                "job_id": None,
                "data_json": json.dumps(
                    {"host": host, "node": node, "task": node, "cuda_visible_devices": "0,1"}
                ),
            },
        )
    _insert(
        conn,
        "event",
        {
            "session_id": multi,
            "at": NOW - 20,
            "kind": "task_ended",
            "job_id": None,
            "data_json": json.dumps({"host": "duo2", "node": 1, "task": 1, "exit_code": 0}),
        },
    )
    # events whose stored fields are not a JSON object (a damaged row): shown, never a crash
    for at, data_json in ((NOW - 8, '"oops"'), (NOW - 7, "[1, 2]"), (NOW - 6, "{not json")):
        _insert(
            conn,
            "event",
            {
                "session_id": ids[1],
                "at": at,
                "kind": "signal",
                "job_id": None,
                "data_json": data_json,
            },
        )
    first = ids[0]
    _insert(
        conn,
        "event",
        {
            "session_id": first,
            "at": NOW - 10,
            "kind": TAKEN,
            "job_id": None,
            "data_json": json.dumps(
                {"step": 5, "version": 1, "changes": {"lr": 0.5}, "previous": {"lr": 0.1}}
            ),
        },
    )
    _insert(
        conn,
        "event",
        {
            "session_id": first,
            "at": NOW - 9,
            "kind": TAKEN,
            "job_id": None,
            "data_json": json.dumps({"changes": "not a mapping"}),
        },
    )
    for session_id in ids[:6]:
        _insert(
            conn,
            "gpu_usage",
            {
                "session_id": session_id,
                "idle_since": NOW - 600,
                "last_sample_at": NOW - 5,
                "last_util": 0.0,
                "samples": 9,
                "warnings": 0,
            },
        )
        _insert(
            conn,
            "job_run",
            {
                "session_id": session_id,
                "job_id": str(1000 + session_id * 10),
                "restart_count": 0,
                "started_at": NOW - 90,
                "ended_at": NOW - 60,
                "host": "vm",
                "exit_code": None,
                "outcome": "requeued",
                "first_line": 0,
                "resume_tag": None,
                "resume_step": None,
                "first_step": 0,
                "supersede_from_step": None,
            },
        )
        _insert(
            conn,
            "job_run",
            {
                "session_id": session_id,
                "job_id": str(1000 + session_id * 10),
                "restart_count": 1,
                "started_at": NOW - 50,
                "ended_at": None,
                "host": "vm",
                "exit_code": None,
                "outcome": None,
                "first_line": 2,
                "resume_tag": "ep1",
                "resume_step": 1,
                "first_step": 1,
                "supersede_from_step": 1,
            },
        )
        for line in range(4):
            _insert(
                conn,
                "metric_point",
                {
                    "session_id": session_id,
                    "line": line,
                    "step": line,
                    "time": NOW,
                    "name": "loss",
                    "value": None if line == 3 else 1.0 / (line + 1),
                },
            )
        for k, pinned in enumerate((0, 1)):
            _insert(
                conn,
                "snapshot",
                {
                    "session_id": session_id,
                    "tag": f"ep{k}",
                    "step": k,
                    "metrics_json": json.dumps({"loss": 0.5}),
                    "bytes": 100 * (k + 1),
                    "file_count": 1,
                    "created_at": NOW - 30 + k,
                    "job_id": None,
                    "restart_count": 0,
                    "pinned": pinned,
                    "forked_from": 0,
                    "deleting": 0,
                    "problem": None,
                    "dir_mtime_ns": 0,
                    "seen_at": NOW,
                },
            )
        _insert(
            conn,
            "scrape_cursor",
            {
                "session_id": session_id,
                "file": "metrics.jsonl",
                "offset": 10,
                "lines": 4,
                "malformed": 2,
                "updated_at": NOW,
            },
        )
        _insert(
            conn,
            "ingest_problem",
            {
                "session_id": session_id,
                "file": "metrics.jsonl",
                "line": 3,
                "problem": "not JSON",
                "at": NOW,
            },
        )
        _insert(
            conn,
            "metric_source",
            {"session_id": session_id, "name": "val_acc", "source": "tensorboard"},
        )
    _insert(
        conn,
        "lineage",
        {
            "child_session_id": ids[1],
            "parent_session_id": ids[0],
            "parent_name": "mnist/1",
            "parent_tag": "ep1",
            "parent_step": 1,
            "parent_snapshot_path": "/runs/x",
            "overrides_json": json.dumps({"lr": 0.2}),
            "created_at": NOW,
        },
    )
    _insert(
        conn,
        "session_dataset",
        {
            "session_id": ids[2],
            "cluster": "local",
            "name": "imagenet",
            "version": 3,
            "path": "/data/imagenet/3",
            "staged": 1,
        },
    )
    _insert(conn, "stdout_capture", {"session_id": ids[2], "pattern": None})
    conn.commit()
    conn.close()


@pytest.fixture
def both(tmp_path: Path) -> Iterator[tuple[Catalog, QuickReader]]:
    path = tmp_path / "catalog.db"
    open_catalog(f"sqlite:///{path}").close()
    _fill(path)
    catalog = open_catalog(f"sqlite:///{path}")
    reader = open_quick(f"sqlite:///{path}")
    assert reader is not None
    yield catalog, reader
    reader.close()
    catalog.close()


FILTERS: list[dict[str, Any]] = [
    {},
    {"owner": ME},
    {"owner": "bob"},
    {"project": "mnist"},
    {"cluster": "duo"},
    {"project": "gpt", "cluster": "local", "owner": ME},
    {"limit": 5},
    {"limit": 0},
    {"sweep": "sweepy/sweep-1"},
    {"sweep": "sweepy/sweep-1", "cluster": "duo", "limit": 1},
    {"project": "nope"},
]


@pytest.mark.parametrize("filters", FILTERS)
def test_ps_rows_are_the_same(both: tuple[Catalog, QuickReader], filters: dict[str, Any]) -> None:
    catalog, reader = both
    full = session_rows(catalog, now=NOW, **filters)
    quick = session_rows(reader, now=NOW, **filters)
    assert quick == full
    assert [row.to_json() for row in quick] == [row.to_json() for row in full]
    if not filters:
        assert len(full) == 29  # every kind of row above is in the comparison
        assert any(row.nodes == 2 and row.node_summary for row in full)
        assert any(row.requeues for row in full)
        assert any(row.gpu_idle_s for row in full)
        assert any(row.name.startswith("bob/") for row in full)  # shared: owner in names
        assert any(row.column("lr") is not None for row in full)


def test_show_detail_is_the_same_for_every_session(both: tuple[Catalog, QuickReader]) -> None:
    catalog, reader = both
    names = [row.name for row in session_rows(catalog, owner=ME, now=NOW)]
    assert len(names) > 20
    for name in names:
        assert session_detail(reader, name, now=NOW) == session_detail(catalog, name, now=NOW)
    full = session_detail(catalog, "mnist/1", now=NOW)
    assert full["hyperparameter_changes"] and full["snapshots"]["count"] == 2
    assert full["superseded_points"] and full["non_finite_values"] == 1
    assert session_detail(catalog, "gpt/77", now=NOW)["node_states"]
    damaged = [
        e for e in session_detail(catalog, "cifar/1", now=NOW)["events"] if "unreadable" in e
    ]
    assert [e["unreadable"] for e in damaged] == ['"oops"', "[1, 2]", "{not json"]


def test_unusual_questions_fall_back(both: tuple[Catalog, QuickReader]) -> None:
    _, reader = both
    for name in ("mnist/999", "not a name", "carol/mnist/1"):
        with pytest.raises(Fallback):
            reader.get_session(name)
    for sweep in ("sweepy/sweep-2", "sweepy/x", "mnist/sweep-1"):
        with pytest.raises(Fallback):
            reader.sweep_members(sweep)


def test_only_a_plain_sqlite_catalog_of_the_known_revision(tmp_path: Path) -> None:
    assert REVISION == HEAD  # a new migration: check the queries, then move this on
    assert TASK_EVENTS == nodes.TASK_EVENTS
    path = tmp_path / "c.db"
    assert open_quick(f"sqlite:///{path}") is None  # no file yet: the full path makes it
    open_catalog(f"sqlite:///{path}").close()
    reader = open_quick(f"sqlite:///{path}")
    assert reader is not None
    reader.close()
    assert open_quick("postgresql://u@h/db") is None
    assert open_quick(f"sqlite:///{path}?timeout=3") is None
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alembic_version SET version_num = '0005_slurm_clock'")
    conn.commit()
    conn.close()
    assert open_quick(f"sqlite:///{path}") is None  # the full path upgrades it
