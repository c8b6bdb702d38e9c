"""Snapshot, lineage and job-run rows on SQLite AND on a real PostgreSQL server: scans,
the deletion claim that a fork and a second gc can never both win, and the metric history
of a requeued session (the lost tail superseded, nothing doubled)."""

from __future__ import annotations

import json

from sqlmodel import select

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import (
    CursorState,
    metric_lines,
    store_event_batch,
    store_metric_batch,
    superseded_count,
)
from nsml_hpc.catalog.sessions import discard_session, mark_submitted, reserve_session
from nsml_hpc.catalog.snapshot_models import JobRunRecord, LineageRecord, SnapshotRecord
from nsml_hpc.catalog.snapshots import (
    ScannedSnapshot,
    claim_deletion,
    job_runs_of,
    protect_for_fork,
    refresh_job_runs,
    requeue_counts,
    set_pinned,
    snapshots_of,
    store_scan,
)
from nsml_hpc.job.snapshot_format import FileEntry, Manifest
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.runfiles.scrape import parse_event_lines, parse_metric_lines


def _session(catalog: Catalog, project: str = "snap") -> int:
    record = reserve_session(
        catalog,
        spec=SessionSpec(project=project, script="train.py"),
        user="alice",
        run_dir_for=lambda n: f"/runs/alice/{project}/{n}",
        is_free=lambda n: True,
        now=1000.0,
    )
    assert record.id is not None
    mark_submitted(catalog, record.id, job_id=str(record.id + 100), cluster="local", now=1001.0)
    return record.id


def _scanned(tag: str, step: int, created: float, size: int = 10) -> ScannedSnapshot:
    manifest = Manifest(
        tag=tag,
        step=step,
        metrics={"val_loss": 1.0 / (step + 1)},
        files=(FileEntry("model.bin", size),),
        created=created,
    )
    return ScannedSnapshot(tag, int(created * 1e9), manifest)


def test_scans_add_update_and_drop_rows_and_keep_pins(catalog: Catalog) -> None:
    session_id = _session(catalog)
    first = [_scanned("step-1", 1, 10.0), _scanned("step-2", 2, 20.0)]
    changes = store_scan(catalog, session_id, first, {"step-1", "step-2"}, 5, 30.0)
    assert sorted(changes.added) == ["step-1", "step-2"]
    row = snapshots_of(catalog, [session_id])[session_id][0]
    assert row.id is not None
    assert set_pinned(catalog, row.id, True)
    replaced = [_scanned("step-1", 1, 40.0, size=99)]
    changes = store_scan(catalog, session_id, replaced, {"step-1"}, 6, 50.0)
    assert (changes.updated, changes.vanished) == (["step-1"], ["step-2"])
    [kept] = snapshots_of(catalog, [session_id])[session_id]
    assert (kept.tag, kept.bytes, kept.created_at, kept.pinned) == ("step-1", 99, 40.0, True)


def test_a_fork_and_a_deletion_can_never_both_win(catalog: Catalog) -> None:
    session_id = _session(catalog)
    store_scan(
        catalog, session_id, [_scanned("a", 1, 1.0), _scanned("b", 2, 2.0)], {"a", "b"}, 1, 9.0
    )
    first, second = snapshots_of(catalog, [session_id])[session_id]
    assert first.id is not None and second.id is not None
    with catalog.session() as db:
        assert protect_for_fork(db, first.id)
    assert not claim_deletion(catalog, first.id)  # forked from: never deleted
    assert claim_deletion(catalog, second.id)
    assert not claim_deletion(catalog, second.id)  # a second gc loses
    with catalog.session() as db:
        assert not protect_for_fork(db, second.id)  # too late to fork from it
    assert not set_pinned(catalog, second.id, True)
    assert [row.tag for row in snapshots_of(catalog, [session_id])[session_id]] == ["a"]


def test_pinned_snapshots_cannot_be_claimed(catalog: Catalog) -> None:
    session_id = _session(catalog)
    store_scan(catalog, session_id, [_scanned("a", 1, 1.0)], {"a"}, 1, 9.0)
    [row] = snapshots_of(catalog, [session_id])[session_id]
    assert row.id is not None
    set_pinned(catalog, row.id, True)
    assert not claim_deletion(catalog, row.id)


def _lines(steps: range | list[int], value: float) -> bytes:
    return "".join(
        json.dumps({"step": step, "time": 1.0 + step, "loss": value + step}) + "\n"
        for step in steps
    ).encode()


def _events(*events: dict[str, object]) -> bytes:
    return "".join(json.dumps(event) + "\n" for event in events).encode()


def test_a_requeued_session_has_two_runs_and_one_continuous_history(catalog: Catalog) -> None:
    session_id = _session(catalog)
    # Run 0 reported steps 0..10, its last snapshot was step 7; run 1 resumed from it.
    run0 = _lines(range(11), 0.0)
    run1 = _lines(range(8, 16), 100.0)
    batch0 = parse_metric_lines(run0, 0, session_id)
    store_metric_batch(catalog, session_id, batch0, CursorState(), len(run0), 2000.0)
    events = _events(
        {"event": "started", "time": 1.0, "job_id": "7", "restart_count": 0, "metrics_line": 0},
        {"event": "ended", "time": 2.0, "job_id": "7", "exit_code": 143, "requeue": True},
        {"event": "requeued", "time": 2.0, "job_id": "7", "restart_count": 1},
        {
            "event": "started",
            "time": 3.0,
            "job_id": "7",
            "restart_count": 1,
            "metrics_line": 11,
            "resume_tag": "step-7",
            "resume_step": 7,
        },
    )
    ev = parse_event_lines(events, session_id)
    store_event_batch(catalog, session_id, ev, CursorState(), len(events), 2000.0)
    refresh_job_runs(catalog, [session_id])
    # Before run 1 reports anything, the tail after the snapshot is already superseded.
    assert [line["step"] for line in metric_lines(catalog, session_id)] == list(range(8))
    batch1 = parse_metric_lines(run1, 11, session_id)
    cursor = CursorState(len(run0), 11, 0)
    store_metric_batch(catalog, session_id, batch1, cursor, len(run0) + len(run1), 2001.0)
    refresh_job_runs(catalog, [session_id])
    refresh_job_runs(catalog, [session_id])  # idempotent
    lines = metric_lines(catalog, session_id)
    assert [line["step"] for line in lines] == list(range(16))
    assert [line["loss"] for line in lines[8:]] == [100.0 + step for step in range(8, 16)]
    assert superseded_count(catalog, session_id) == 3
    assert len(metric_lines(catalog, session_id, include_superseded=True)) == 19
    runs = job_runs_of(catalog, [session_id])[session_id]
    assert [(r.job_id, r.restart_count, r.outcome) for r in runs] == [
        ("7", 0, "requeued"),
        ("7", 1, None),
    ]
    assert (runs[1].first_step, runs[1].supersede_from_step) == (8, 8)
    assert requeue_counts(catalog, [session_id]) == {session_id: 1}


def test_a_run_that_redoes_its_resume_step_supersedes_that_step_too(catalog: Catalog) -> None:
    session_id = _session(catalog)
    run0 = _lines(range(6), 0.0)
    run1 = _lines(range(3, 8), 50.0)  # evaluates the loaded snapshot (step 3) again
    store_metric_batch(
        catalog, session_id, parse_metric_lines(run0, 0, session_id), CursorState(), len(run0), 1.0
    )
    store_metric_batch(
        catalog,
        session_id,
        parse_metric_lines(run1, 6, session_id),
        CursorState(len(run0), 6, 0),
        len(run0) + len(run1),
        1.0,
    )
    events = _events(
        {"event": "started", "job_id": "9", "restart_count": 0, "metrics_line": 0},
        {
            "event": "started",
            "job_id": "9",
            "restart_count": 1,
            "metrics_line": 6,
            "resume_step": 3,
            "resume_tag": "step-3",
        },
    )
    ev = parse_event_lines(events, session_id)
    store_event_batch(catalog, session_id, ev, CursorState(), len(events), 1.0)
    refresh_job_runs(catalog, [session_id])
    lines = metric_lines(catalog, session_id)
    assert [line["step"] for line in lines] == list(range(8))
    assert lines[3]["loss"] == 53.0


def test_removing_a_session_removes_its_snapshot_rows_and_lineage(catalog: Catalog) -> None:
    parent = _session(catalog)
    child = _session(catalog)
    store_scan(catalog, parent, [_scanned("a", 1, 1.0)], {"a"}, 1, 9.0)
    store_scan(catalog, child, [_scanned("b", 1, 1.0)], {"b"}, 1, 9.0)
    with catalog.session() as db:
        db.add(
            LineageRecord(
                child_session_id=child,
                parent_session_id=parent,
                parent_name="snap/1",
                parent_tag="a",
                parent_snapshot_path="/runs/alice/snap/1/snapshots/a",
                created_at=5.0,
            )
        )
        db.add(JobRunRecord(session_id=child, job_id="3"))
    discard_session(catalog, parent)
    with catalog.session() as db:
        lineage = db.get(LineageRecord, child)
        assert lineage is not None and lineage.parent_session_id is None  # the history stays
        assert [r.tag for r in db.exec(select(SnapshotRecord)).all()] == ["b"]
    discard_session(catalog, child)
    with catalog.session() as db:
        assert db.exec(select(LineageRecord)).all() == []
        assert db.exec(select(JobRunRecord)).all() == []
        assert db.exec(select(SnapshotRecord)).all() == []
