"""Catalog rows of datasets, printed-metric capture and found checkpoints, on SQLite AND on a
real PostgreSQL server: the links written with a session's reservation, the deletion claim of
a dataset version against its live readers, a printed metric handed over to report() in the
same transaction, and found checkpoints beside saved snapshots (a folder scan never drops
them; a deletion survives a crash between its steps)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.catalog.dataset_models import DatasetVersionRecord, SessionDatasetRecord
from nsml_hpc.catalog.datasets import (
    VersionFacts,
    claim_version_deletion,
    dataset_versions,
    readers,
    release_version_claim,
    stdout_captures,
    store_versions,
)
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import CursorState, MetricIngest, metric_sources, store_ingests
from nsml_hpc.catalog.models import MetricPoint, SessionRecord
from nsml_hpc.catalog.sessions import discard_session, mark_submitted, reserve_session
from nsml_hpc.catalog.snapshot_models import FoundCheckpointRecord
from nsml_hpc.catalog.snapshots import (
    ScannedFound,
    claim_deletion,
    found_records,
    snapshots_of,
    store_found,
    store_scan,
)
from nsml_hpc.catalog.summaries import summaries_of
from nsml_hpc.errors import SpecError
from nsml_hpc.job.spec import DatasetUse, SessionSpec
from nsml_hpc.runfiles.scrape import MetricBatch, parse_metric_lines
from nsml_hpc.snapshots.delete import delete_snapshot, finish_interrupted


def _reserve(catalog: Catalog, spec: SessionSpec) -> int:
    record = reserve_session(
        catalog,
        spec=spec,
        user="alice",
        run_dir_for=lambda n: f"/runs/alice/{spec.project}/{n}",
        is_free=lambda n: True,
        now=1000.0,
    )
    assert record.id is not None
    return record.id


def _version(catalog: Catalog, version: int = 1) -> DatasetVersionRecord:
    facts = VersionFacts("mnist", version, f"/d/mnist/{version}", 10, 2, "ab", 1.0, "alice", "/x")
    store_versions(catalog, "local", "mnist", [facts])
    (row,) = [r for r in dataset_versions(catalog, name="mnist") if r.version == version]
    return row


def test_a_session_reading_a_dataset_holds_its_version_until_it_ends(catalog: Catalog) -> None:
    row = _version(catalog)
    assert row.id is not None
    use = DatasetUse("mnist", 1, True, "/d/mnist/1/data")
    spec = SessionSpec(project="ds", script="t.py", dataset=use, capture_stdout=True)
    session_id = _reserve(catalog, spec)
    with catalog.session() as db:
        link = db.get(SessionDatasetRecord, session_id)
        assert link is not None and (link.name, link.version, link.staged) == ("mnist", 1, True)
    assert stdout_captures(catalog, [session_id]) == {session_id: None}
    assert readers(catalog, "local", "mnist", 1) == [("ds/1", "PREPARING", 1)]
    assert claim_version_deletion(catalog, row.id) == ["ds/1"]  # refused: it reads it
    mark_submitted(catalog, session_id, job_id="7", cluster="local", now=1001.0)
    assert claim_version_deletion(catalog, row.id) == ["ds/1"]
    with catalog.session() as db:
        db.execute(
            update(SessionRecord)
            .where(col(SessionRecord.id) == session_id)
            .values(state="COMPLETED")
        )
    assert claim_version_deletion(catalog, row.id) == []  # finished: the claim is ours
    # A version being deleted gains no new reader: the reservation is refused, all of it.
    with pytest.raises(SpecError, match="being deleted"):
        _reserve(catalog, spec)
    with catalog.session() as db:
        assert len(db.exec(select(SessionRecord)).all()) == 1
    release_version_claim(catalog, row.id)
    second = _reserve(catalog, spec)
    discard_session(catalog, second)  # a failed submit takes its links with it
    with catalog.session() as db:
        assert db.get(SessionDatasetRecord, second) is None


def test_versions_mirror_what_the_cluster_holds(catalog: Catalog) -> None:
    _version(catalog, 1)
    _version(catalog, 2)
    store_versions(
        catalog, "local", "mnist", [VersionFacts("mnist", 2, "/d/mnist/2", 5, 1, "c", 2.0, "b", "")]
    )
    assert [(r.version, r.bytes) for r in dataset_versions(catalog, name="mnist")] == [(2, 5)]


def _printed(session_id: int, name: str, values: list[tuple[int, float]]) -> MetricIngest:
    batch = MetricBatch(lines=len(values))
    for step, value in values:
        batch.points.append((session_id, -1, step, None, name, value))
        batch.last_metrics[name] = value
    return MetricIngest(
        session_id, batch, CursorState(), 100, file="slurm-7.out", sources={name: "stdout:x"}
    )


def test_a_printed_metric_is_handed_over_when_report_brings_it(catalog: Catalog) -> None:
    session_id = _reserve(catalog, SessionSpec(project="pr", script="t.py", capture_stdout=True))
    store_ingests(
        catalog,
        [
            _printed(session_id, "loss", [(0, 1.0), (1, 0.5)]),
            _printed(session_id, "acc", [(1, 0.2)]),
        ],
        [],
        1.0,
        printed_sessions={session_id},
    )
    assert metric_sources(catalog, session_id) == {"loss": "stdout:x", "acc": "stdout:x"}
    lines = b'{"step": 0, "loss": 1.0}\n{"step": 1, "loss": 0.5}\n'
    reported = MetricIngest(session_id, parse_metric_lines(lines, 0, session_id), CursorState(), 50)
    store_ingests(catalog, [reported], [], 2.0, printed_sessions={session_id})
    with catalog.session() as db:
        points = db.exec(select(MetricPoint).where(MetricPoint.session_id == session_id)).all()
        record = db.get(SessionRecord, session_id)
    assert sorted((p.name, p.line, p.step) for p in points) == [
        ("acc", -1, 1),
        ("loss", 0, 0),
        ("loss", 1, 1),
    ]
    assert metric_sources(catalog, session_id) == {"acc": "stdout:x"}  # loss: report()'s now
    summary = summaries_of(catalog, [session_id], ["loss"])[(session_id, "loss")]
    assert summary.points == 2 and summary.min_value == 0.5
    assert record is not None and record.metric_count == 3


def _found(path: str, mtime_ns: int, size: int = 4, problem: str | None = None) -> ScannedFound:
    return ScannedFound(path, path, "torch", 1, {}, size, mtime_ns, problem)


def test_found_checkpoints_live_beside_saved_snapshots(catalog: Catalog) -> None:
    session_id = _reserve(catalog, SessionSpec(project="fc", script="t.py"))
    changes = store_found(
        catalog, session_id, [_found("code/a.pt", 1), _found("code/b.pt", 2)], 5.0
    )
    assert sorted(changes.added) == ["code/a.pt", "code/b.pt"]
    store_scan(catalog, session_id, [], set(), 0, 6.0)  # an empty snapshots/ keeps them
    assert [r.tag for r in snapshots_of(catalog, [session_id])[session_id]] == [
        "code/a.pt",
        "code/b.pt",
    ]
    changes = store_found(catalog, session_id, [_found("code/a.pt", 3, size=9)], 7.0)
    assert (changes.updated, changes.vanished) == (["code/a.pt"], ["code/b.pt"])
    (row,) = snapshots_of(catalog, [session_id])[session_id]
    assert (row.bytes, row.created_at) == (9, 3e-9)
    assert next(iter(found_records(catalog, [session_id]).values())).path == "code/a.pt"


def test_a_found_checkpoint_is_deleted_in_steps_a_crash_cannot_break(
    catalog: Catalog, tmp_path: Path
) -> None:
    run_dir = tmp_path / "runs" / "p" / "1"
    (run_dir / "code" / "ckpt").mkdir(parents=True)
    spec = SessionSpec(project="fd", script="t.py")
    record = reserve_session(
        catalog, spec=spec, user="a", run_dir_for=lambda n: str(run_dir), is_free=lambda n: True,
        now=1.0,
    )  # fmt: skip
    assert record.id is not None
    files = LocalFiles()
    for name in ("a.pt", "b.pt"):
        (run_dir / "code" / "ckpt" / name).write_bytes(b"data")
    infos = {n: (run_dir / "code/ckpt" / n).stat().st_mtime_ns for n in ("a.pt", "b.pt")}
    store_found(
        catalog,
        record.id,
        [_found(f"code/ckpt/{n}", mtime) for n, mtime in infos.items()],
        2.0,
    )
    rows = {row.tag: row for row in snapshots_of(catalog, [record.id])[record.id]}
    assert delete_snapshot(catalog, files, record, rows["code/ckpt/a.pt"]).done
    assert not (run_dir / "code/ckpt/a.pt").exists()
    assert sorted(p.name for p in (run_dir / "code/ckpt").iterdir()) == ["b.pt"]
    # A crash right after the claim: the next gc finishes the deletion.
    row_b = rows["code/ckpt/b.pt"]
    assert row_b.id is not None and claim_deletion(catalog, row_b.id)
    recovery = finish_interrupted(catalog, {record.id: record}, {record.id: files}, set())
    assert recovery.finished == [f"{record.name}:code/ckpt/b.pt"]
    assert list((run_dir / "code/ckpt").iterdir()) == []
    assert snapshots_of(catalog, [record.id])[record.id] == []
    with catalog.session() as db:
        assert db.exec(select(FoundCheckpointRecord)).all() == []
