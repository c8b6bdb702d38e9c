"""Sync while accounting is down (sacct fails, squeue answers), above the backend seam: what is
asked, and how the answers are applied. The real outage runs against the sandbox in
tests/slurm/test_dbd_outage.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import get_session, state_history
from nsml_hpc.config.settings import Settings
from nsml_hpc.errors import BackendError
from nsml_hpc.slurm.records import JobRecord
from nsml_hpc.slurm.states import SessionState
from nsml_hpc.sync.run import PROVISIONAL_REASON, sync
from tests.catalog.test_sync_logic import SUBMITTED_AT, RecordingBackend, _session

DOWN = "sacct failed on local: Problem talking to the database: Connection refused"


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return open_catalog(f"sqlite:///{tmp_path / 'c.db'}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        catalog_url="unused", run_root=tmp_path, poll_floor_seconds=1.0, submit_grace_seconds=60.0
    )


class FlakyAccounting(RecordingBackend):
    """The recording backend, with sacct failing the way it does while slurmdbd is down."""

    def __init__(self) -> None:
        super().__init__()
        self.accounting_down = False
        self.queue_down = False

    def query(self, job_ids: Sequence[str], since: float) -> list[JobRecord]:
        if self.accounting_down:
            self.calls.append(("sacct", list(job_ids)))
            raise BackendError(DOWN)
        return super().query(job_ids, since)

    def queue(self, job_ids: Sequence[str]) -> list[JobRecord]:
        if self.queue_down:
            self.calls.append(("squeue", list(job_ids)))
            raise BackendError("squeue failed on local: Unable to contact slurm controller")
        return super().queue(job_ids)


def _running(job_id: str) -> JobRecord:
    return JobRecord(
        job_id, SessionState.RUNNING, "RUNNING", exit_code=0, started_at=SUBMITTED_AT + 1
    )


def _start(
    catalog: Catalog, settings: Settings, tmp_path: Path, jobs: list[str]
) -> tuple[list[str], FlakyAccounting]:
    names = [_session(catalog, tmp_path, job) for job in jobs]
    backend = FlakyAccounting()
    for job in jobs:
        backend.accounting[job] = _running(job)
    sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 5)
    assert {get_session(catalog, n).state for n in names} == {SessionState.RUNNING}
    backend.accounting_down = True
    backend.calls.clear()
    return names, backend


def test_one_squeue_call_gives_live_states_and_nothing_changes_falsely(
    catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    names, backend = _start(catalog, settings, tmp_path, ["41", "42"])
    backend.queued["41"] = JobRecord("41", SessionState.RUNNING, "RUNNING", node_list="vm")
    # 42 finished long ago: squeue has purged it, and its run directory says nothing.
    report = sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 500)
    assert backend.calls == [("sacct", ["41", "42"]), ("squeue", ["41", "42"])]
    assert report.degraded == {
        "local": f"{DOWN}; states from squeue until accounting answers (exit codes and end "
        "times of jobs that end meanwhile are provisional)"
    }
    assert report.errors == {} and report.state_changes == 0
    for name in names:
        record = get_session(catalog, name)
        assert (record.state, record.reason, record.exit_code) == ("RUNNING", None, 0)
        assert record.started_at == SUBMITTED_AT + 1


def test_an_end_seen_in_squeue_is_provisional_until_sacct_answers(
    catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    [name], backend = _start(catalog, settings, tmp_path, ["51"])
    backend.queued["51"] = JobRecord("51", SessionState.COMPLETED, "COMPLETED")
    report = sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 20)
    record = get_session(catalog, name)
    assert (record.state, record.reason, record.exit_code) == (
        "COMPLETED",
        PROVISIONAL_REASON,
        None,
    )
    assert report.state_changes == 1
    # Still down: asked again (one squeue), nothing rewritten.
    again = sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 30)
    assert again.state_changes == 0
    # Accounting is back, but has not caught up yet: the session waits, it is not LOST.
    backend.accounting_down = False
    backend.calls.clear()
    del backend.accounting["51"]
    backend.queued.clear()
    waiting = sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 400)
    assert waiting.degraded == {}
    assert backend.calls == [("sacct", ["51"])]
    assert get_session(catalog, name).reason == PROVISIONAL_REASON
    # Caught up: the accounting truth, and the session is not asked about again.
    backend.accounting["51"] = JobRecord(
        "51",
        SessionState.COMPLETED,
        "COMPLETED",
        exit_code=0,
        started_at=SUBMITTED_AT + 1,
        ended_at=SUBMITTED_AT + 15,
        elapsed_s=14,
    )
    recovered = sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 410)
    record = get_session(catalog, name)
    assert (record.state, record.reason, record.exit_code, record.ended_at) == (
        "COMPLETED",
        None,
        0,
        SUBMITTED_AT + 15,
    )
    assert recovered.state_changes == 0  # the same state, confirmed
    assert record.id is not None
    assert [change.state for change in state_history(catalog, record.id)] == [
        "SUBMITTED",
        "RUNNING",
        "COMPLETED",
    ]
    backend.calls.clear()
    sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 420)
    assert backend.calls == []


def test_an_ended_event_in_the_run_directory_settles_a_job_squeue_forgot(
    catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    [name], backend = _start(catalog, settings, tmp_path, ["61"])
    run_dir = Path(get_session(catalog, name).run_dir)
    run_dir.mkdir(parents=True)
    events = [
        {"event": "started", "time": SUBMITTED_AT + 1, "job_id": "61"},
        {"event": "ended", "time": SUBMITTED_AT + 30, "job_id": "61", "exit_code": 3},
    ]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    report = sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 500)
    assert backend.calls == [("sacct", ["61"]), ("squeue", ["61"])]
    record = get_session(catalog, name)
    assert (record.state, record.reason, record.exit_code, record.ended_at) == (
        "FAILED",
        PROVISIONAL_REASON,
        3,
        SUBMITTED_AT + 30,
    )
    assert report.state_changes == 1
    assert sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 510).state_changes == 0


def test_a_requeue_end_is_not_an_end(catalog: Catalog, settings: Settings, tmp_path: Path) -> None:
    [name], backend = _start(catalog, settings, tmp_path, ["71"])
    run_dir = Path(get_session(catalog, name).run_dir)
    run_dir.mkdir(parents=True)
    line = {"event": "ended", "time": 1.0, "job_id": "71", "exit_code": 0, "requeue": True}
    (run_dir / "events.jsonl").write_text(json.dumps(line) + "\n")
    sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 500)
    assert get_session(catalog, name).state == "RUNNING"


def test_squeue_failing_too_is_one_error_naming_both(
    catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    [name], backend = _start(catalog, settings, tmp_path, ["81"])
    backend.queue_down = True
    report = sync(catalog, settings, lambda c: backend, now=SUBMITTED_AT + 50)
    assert report.degraded == {}
    assert report.errors == {
        "local": f"{DOWN}; squeue failed too: squeue failed on local: Unable to contact slurm "
        "controller"
    }
    assert get_session(catalog, name).state == "RUNNING"
