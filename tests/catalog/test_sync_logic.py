"""Sync's decisions above the backend seam (a recording stand-in backend is allowed here: these
tests check what sync asks and how it applies answers, not that a Slurm path works — the
integration tests do that against the real sandbox)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import get_session, mark_submitted, reserve_session
from nsml_hpc.config.settings import Settings
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.slurm.records import JobRecord
from nsml_hpc.slurm.states import SessionState
from nsml_hpc.sync.run import sync

SUBMITTED_AT = 10_000.0


class RecordingBackend:
    cluster = "local"

    def __init__(self) -> None:
        self.files = LocalFiles()
        self.accounting: dict[str, JobRecord] = {}
        self.queued: dict[str, JobRecord] = {}
        self.calls: list[tuple[str, list[str]]] = []

    def submit(self, script_path: Path) -> str:
        raise AssertionError("sync never submits")

    def query(self, job_ids: Sequence[str], since: float) -> list[JobRecord]:
        self.calls.append(("sacct", list(job_ids)))
        assert since < SUBMITTED_AT
        return [self.accounting[j] for j in job_ids if j in self.accounting]

    def queue(self, job_ids: Sequence[str]) -> list[JobRecord]:
        self.calls.append(("squeue", list(job_ids)))
        return [self.queued[j] for j in job_ids if j in self.queued]

    def cancel(self, job_ids: Sequence[str]) -> None:
        raise AssertionError("sync never cancels")


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return open_catalog(f"sqlite:///{tmp_path / 'c.db'}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        catalog_url="unused",
        run_root=tmp_path,
        poll_floor_seconds=1.0,
        slurm_floor_seconds=1.0,
        submit_grace_seconds=60.0,
    )


def _session(catalog: Catalog, tmp_path: Path, job_id: str) -> str:
    record = reserve_session(
        catalog,
        spec=SessionSpec(project="p", script="t.py"),
        user="u",
        run_dir_for=lambda n: str(tmp_path / str(n)),
        is_free=lambda n: True,
        now=SUBMITTED_AT,
    )
    assert record.id is not None
    mark_submitted(catalog, record.id, job_id=job_id, cluster="local", now=SUBMITTED_AT)
    return record.name


def test_a_fresh_job_missing_from_sacct_waits_out_the_grace_period(
    catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    name = _session(catalog, tmp_path, "41")
    backend = RecordingBackend()
    sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 5)
    assert backend.calls == [("sacct", ["41"])]
    assert get_session(catalog, name).state == SessionState.SUBMITTED


def test_after_the_grace_period_squeue_is_asked_once_then_the_job_is_lost(
    catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    names = [_session(catalog, tmp_path, job) for job in ("41", "42")]
    backend = RecordingBackend()
    backend.queued["42"] = JobRecord("42", SessionState.PENDING, "PENDING", reason="Priority")
    sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 120)
    assert backend.calls == [("sacct", ["41", "42"]), ("squeue", ["41", "42"])]
    assert get_session(catalog, names[0]).state == SessionState.LOST
    pending = get_session(catalog, names[1])
    assert (pending.state, pending.reason) == (SessionState.PENDING, "Priority")


def test_pending_reasons_come_from_one_squeue_call_for_all_pending_jobs(
    catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    names = [_session(catalog, tmp_path, job) for job in ("51", "52", "53")]
    backend = RecordingBackend()
    for job in ("51", "52"):
        backend.accounting[job] = JobRecord(job, SessionState.PENDING, "PENDING")
        backend.queued[job] = JobRecord(job, SessionState.PENDING, "PENDING", reason="Resources")
    backend.accounting["53"] = JobRecord("53", SessionState.RUNNING, "RUNNING", started_at=1.0)
    sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 5)
    assert backend.calls == [("sacct", ["51", "52", "53"]), ("squeue", ["51", "52"])]
    assert [get_session(catalog, n).reason for n in names] == ["Resources", "Resources", None]


def test_the_poll_floor_keeps_a_second_sync_from_asking(
    catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    _session(catalog, tmp_path, "61")
    backend = RecordingBackend()
    first = sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 5)
    second = sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 5.5)
    assert (first.queried, second.skipped_by_floor) == (["local"], ["local"])
    assert len(backend.calls) == 1


def test_finished_sessions_are_not_asked_about_again(
    catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    name = _session(catalog, tmp_path, "71")
    backend = RecordingBackend()
    backend.accounting["71"] = JobRecord(
        "71", SessionState.FAILED, "FAILED", exit_code=3, ended_at=SUBMITTED_AT + 3
    )
    sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 5)
    sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 50)
    record = get_session(catalog, name)
    assert (record.state, record.exit_code) == (SessionState.FAILED, 3)
    assert backend.calls == [("sacct", ["71"])]


def test_a_running_jobs_growing_elapsed_time_writes_nothing(
    catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    name = _session(catalog, tmp_path, "81")
    backend = RecordingBackend()
    running = JobRecord("81", SessionState.RUNNING, "RUNNING", started_at=SUBMITTED_AT, elapsed_s=4)
    backend.accounting["81"] = running
    first = sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 5)
    backend.accounting["81"] = JobRecord(
        "81", SessionState.RUNNING, "RUNNING", started_at=SUBMITTED_AT, elapsed_s=40
    )
    second = sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 45)
    assert (first.state_changes, second.state_changes) == (1, 0)
    assert get_session(catalog, name).updated_at == SUBMITTED_AT + 5
