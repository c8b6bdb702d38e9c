"""A metrics file far larger than one read: sync catches up over several syncs without losing
or doubling a line, a torn last line waits until it is complete, and a single line longer
than a whole read is skipped and counted once instead of stalling the file forever."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nsml_hpc.backends.fake import FakeBackend, FakeJob
from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.catalog import open_catalog
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import metric_lines
from nsml_hpc.catalog.sessions import get_session, mark_submitted, reserve_session
from nsml_hpc.config.settings import Settings
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.sync import run as sync_run

READ_CAP = 4096  # bytes per file and batch in these tests (16 MiB in the product)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Catalog, str, Path]:
    monkeypatch.setattr(sync_run, "MAX_READ_BYTES", READ_CAP)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    catalog = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    record = reserve_session(
        catalog,
        spec=SessionSpec(project="big", script="t.py"),
        user="u",
        run_dir_for=lambda _n: str(run_dir),
        is_free=lambda _n: True,
        now=time.time(),
    )
    assert record.id is not None
    mark_submitted(catalog, record.id, job_id="1", cluster="local", now=time.time())
    return catalog, record.name, run_dir


def _sync_until_quiet(catalog: Catalog, tmp_path: Path) -> tuple[int, list[str]]:
    backend = FakeBackend(files=LocalFiles())
    backend.add(FakeJob("1", "RUNNING", None, started_at=time.time()))
    settings = Settings(catalog_url="unused", run_root=tmp_path, poll_floor_seconds=0.5)
    now, warnings = time.time(), []
    for syncs in range(1, 500):
        now += 1.0
        report = sync_run.sync(catalog, settings, lambda _cluster: backend, now=now)
        warnings += report.warnings
        if report.new_points == 0 and report.malformed_lines == 0 and not report.warnings:
            return syncs, warnings
    raise AssertionError("sync never caught up")


def test_a_backlog_arrives_over_several_syncs_exactly_once_and_a_torn_line_waits(
    world: tuple[Catalog, str, Path], tmp_path: Path
) -> None:
    catalog, name, run_dir = world
    lines = [{"step": step, "time": 1.0 + step, "loss": 1.0 / (step + 1)} for step in range(2000)]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    assert len(text) > 10 * READ_CAP
    (run_dir / "metrics.jsonl").write_text(text + '{"step": 2000, "lo')  # torn by a crash
    syncs, _ = _sync_until_quiet(catalog, tmp_path)
    record = get_session(catalog, name)
    assert record.id is not None
    assert syncs > 10  # it really took several reads
    assert metric_lines(catalog, record.id) == lines
    with (run_dir / "metrics.jsonl").open("a") as out:
        out.write('ss": 0.5}\n')  # the writer comes back and completes the line
    _sync_until_quiet(catalog, tmp_path)
    assert metric_lines(catalog, record.id)[-1] == {"step": 2000, "time": None, "loss": 0.5}
    assert get_session(catalog, name).malformed_lines == 0


def test_a_line_longer_than_a_whole_read_is_skipped_named_and_counted_once(
    world: tuple[Catalog, str, Path], tmp_path: Path
) -> None:
    catalog, name, run_dir = world
    huge = json.dumps({"step": 2, "note": "x" * (3 * READ_CAP)})
    (run_dir / "metrics.jsonl").write_text(
        json.dumps({"step": 1, "loss": 1.0}) + "\n" + huge + "\n" + '{"step": 3, "loss": 3.0}\n'
    )
    _, warnings = _sync_until_quiet(catalog, tmp_path)
    record = get_session(catalog, name)
    assert record.id is not None
    assert [line["step"] for line in metric_lines(catalog, record.id)] == [1, 3]
    assert record.malformed_lines == 1
    assert any("a line longer than 4,096 bytes" in warning for warning in warnings)
