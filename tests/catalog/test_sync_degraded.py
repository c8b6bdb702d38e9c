"""Sync while accounting is down (sacct fails, squeue answers), above the backend seam, against
the shipped fake cluster: what is asked, and how the answers are applied. The real outage runs
against the sandbox in tests/slurm/test_dbd_outage.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nsml_hpc.backends.fake import FakeBackend, FakeJob, Step
from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.catalog.allocations import allocations_of
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import get_session, jobs_of, state_history
from nsml_hpc.config.settings import Settings
from nsml_hpc.errors import BackendError
from nsml_hpc.slurm.states import SessionState
from nsml_hpc.sync.run import PROVISIONAL_REASON, SyncReport
from tests.catalog.test_sync_logic import SUBMITTED_AT, Clock, _asked, _session, _sync_at

DOWN = "sacct failed on local: Problem talking to the database: Connection refused"


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


@pytest.fixture
def clock() -> Clock:
    return Clock()


class Outage:
    """A fake cluster whose jobs run, then whose accounting goes down."""

    def __init__(self, catalog: Catalog, settings: Settings, clock: Clock) -> None:
        self.catalog, self.settings, self.clock = catalog, settings, clock
        self.backend = FakeBackend(files=LocalFiles(), clock=clock)  # run directories are local

    def sync(self, now: float) -> SyncReport:
        return _sync_at(self.catalog, self.settings, self.backend, self.clock, now)


def _start(
    catalog: Catalog, settings: Settings, tmp_path: Path, clock: Clock, jobs: list[str]
) -> tuple[list[str], Outage]:
    names = [_session(catalog, tmp_path, job) for job in jobs]
    outage = Outage(catalog, settings, clock)
    for job in jobs:
        outage.backend.add(
            FakeJob(job, "RUNNING", None, submitted_at=SUBMITTED_AT, started_at=SUBMITTED_AT + 1)
        )
    outage.sync(SUBMITTED_AT + 5)
    assert {get_session(catalog, n).state for n in names} == {SessionState.RUNNING}
    outage.backend.fail("query", error=BackendError(DOWN))
    outage.backend.calls.clear()
    return names, outage


def _ended(outage: Outage, job_id: str, at: float, step: Step) -> None:
    """``job_id`` ends at ``at`` (while accounting is down: only squeue may tell, for
    MinJobAge)."""
    outage.clock.now = at
    outage.backend.apply(job_id, step)


def test_one_squeue_call_gives_live_states_and_nothing_changes_falsely(
    catalog: Catalog, settings: Settings, tmp_path: Path, clock: Clock
) -> None:
    names, outage = _start(catalog, settings, tmp_path, clock, ["41", "42"])
    # 42 finished long ago: squeue has purged it, and its run directory says nothing.
    _ended(outage, "42", SUBMITTED_AT + 10, Step("COMPLETED"))
    report = outage.sync(SUBMITTED_AT + 500)
    assert _asked(outage.backend) == [("query", ["41", "42"]), ("queue", ["41", "42"])]
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
    catalog: Catalog, settings: Settings, tmp_path: Path, clock: Clock
) -> None:
    [name], outage = _start(catalog, settings, tmp_path, clock, ["51"])
    backend = outage.backend
    _ended(outage, "51", SUBMITTED_AT + 15, Step("COMPLETED"))
    report = outage.sync(SUBMITTED_AT + 20)
    record = get_session(catalog, name)
    assert (record.state, record.reason, record.exit_code) == (
        "COMPLETED",
        PROVISIONAL_REASON,
        None,
    )
    assert report.state_changes == 1
    # Still down: asked again (one squeue), nothing rewritten.
    again = outage.sync(SUBMITTED_AT + 30)
    assert again.state_changes == 0
    # Accounting is back, but has not caught up yet (and squeue has purged the job): the
    # session waits, it is not LOST.
    backend.recover("query")
    backend.job("51").in_accounting = False
    backend.calls.clear()
    waiting = outage.sync(SUBMITTED_AT + 400)
    assert waiting.degraded == {}
    assert _asked(backend) == [("query", ["51"])]
    assert get_session(catalog, name).reason == PROVISIONAL_REASON
    # Caught up: the accounting truth, and the session is not asked about again.
    backend.job("51").in_accounting = True
    recovered = outage.sync(SUBMITTED_AT + 410)
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
    outage.sync(SUBMITTED_AT + 420)
    assert backend.calls == []


def test_a_provisional_end_with_an_incomplete_allocation_takes_sacct_record_at_recovery(
    catalog: Catalog, settings: Settings, tmp_path: Path, clock: Clock
) -> None:
    # As on the sandbox: the last sacct before the outage had the running job without its
    # partition (an incomplete allocation), and accounting is back within a minute of the end,
    # so the session is both provisional and "settling" (ended recently, allocation
    # incomplete). Its end must still be replaced by sacct's record, in the one sacct call.
    name = _session(catalog, tmp_path, "91")
    outage = Outage(catalog, settings, clock)
    backend = outage.backend
    backend.add(
        FakeJob(
            "91",
            "RUNNING",
            None,
            gpus=1,
            submitted_at=SUBMITTED_AT,
            started_at=SUBMITTED_AT + 1,
            allocation_recorded=False,
        )
    )
    outage.sync(SUBMITTED_AT + 5)
    record = get_session(catalog, name)
    assert record.id is not None
    [job] = jobs_of(catalog, [record.id])[record.id]
    assert job.id is not None
    assert allocations_of(catalog, [job.id])[job.id][1] is False
    backend.fail("query", error=BackendError(DOWN))
    # The job ends; squeue has already forgotten it (MinJobAge), and the run directory's
    # `ended` event settles it, provisionally (no squeue line: nothing to store of its
    # allocation meanwhile).
    backend.min_job_age = 0.0
    _ended(outage, "91", SUBMITTED_AT + 15, Step("COMPLETED"))
    run_dir = Path(record.run_dir)
    run_dir.mkdir(parents=True)
    events = [
        {"event": "started", "time": SUBMITTED_AT + 1, "job_id": "91"},
        {"event": "ended", "time": SUBMITTED_AT + 15, "job_id": "91", "exit_code": 0},
    ]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    assert outage.sync(SUBMITTED_AT + 20).state_changes == 1
    assert get_session(catalog, name).reason == PROVISIONAL_REASON
    assert allocations_of(catalog, [job.id])[job.id][1] is False
    # Accounting is back 40 s later, with the whole record now.
    backend.recover("query")
    backend.job("91").allocation_recorded = True
    backend.calls.clear()
    report = outage.sync(SUBMITTED_AT + 60)
    assert report.degraded == {} and report.errors == {}
    assert _asked(backend) == [("query", ["91"])]
    assert report.state_changes == 0  # the same state, confirmed
    recovered = get_session(catalog, name)
    assert (recovered.state, recovered.reason, recovered.exit_code, recovered.ended_at) == (
        "COMPLETED",
        None,
        0,
        SUBMITTED_AT + 15,
    )
    assert [change.state for change in state_history(catalog, record.id)] == [
        "SUBMITTED",
        "RUNNING",
        "COMPLETED",
    ]
    assert allocations_of(catalog, [job.id])[job.id][1] is True
    # Settled: neither provisional nor incomplete any more, so not asked about again.
    backend.calls.clear()
    outage.sync(SUBMITTED_AT + 70)
    assert backend.calls == []


def test_an_ended_event_in_the_run_directory_settles_a_job_squeue_forgot(
    catalog: Catalog, settings: Settings, tmp_path: Path, clock: Clock
) -> None:
    [name], outage = _start(catalog, settings, tmp_path, clock, ["61"])
    _ended(outage, "61", SUBMITTED_AT + 30, Step("FAILED", exit_code=3))
    run_dir = Path(get_session(catalog, name).run_dir)
    run_dir.mkdir(parents=True)
    events = [
        {"event": "started", "time": SUBMITTED_AT + 1, "job_id": "61"},
        {"event": "ended", "time": SUBMITTED_AT + 30, "job_id": "61", "exit_code": 3},
    ]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    report = outage.sync(SUBMITTED_AT + 500)  # squeue purged the job long ago
    assert _asked(outage.backend) == [("query", ["61"]), ("queue", ["61"])]
    record = get_session(catalog, name)
    assert (record.state, record.reason, record.exit_code, record.ended_at) == (
        "FAILED",
        PROVISIONAL_REASON,
        3,
        SUBMITTED_AT + 30,
    )
    assert report.state_changes == 1
    assert outage.sync(SUBMITTED_AT + 510).state_changes == 0


def test_a_requeue_end_is_not_an_end(
    catalog: Catalog, settings: Settings, tmp_path: Path, clock: Clock
) -> None:
    [name], outage = _start(catalog, settings, tmp_path, clock, ["71"])
    outage.backend.forget("71")  # squeue does not tell: only the run directory speaks
    run_dir = Path(get_session(catalog, name).run_dir)
    run_dir.mkdir(parents=True)
    line = {"event": "ended", "time": 1.0, "job_id": "71", "exit_code": 0, "requeue": True}
    (run_dir / "events.jsonl").write_text(json.dumps(line) + "\n")
    outage.sync(SUBMITTED_AT + 500)
    assert get_session(catalog, name).state == "RUNNING"


def test_squeue_failing_too_is_one_error_naming_both(
    catalog: Catalog, settings: Settings, tmp_path: Path, clock: Clock
) -> None:
    [name], outage = _start(catalog, settings, tmp_path, clock, ["81"])
    squeue_down = BackendError("squeue failed on local: Unable to contact slurm controller")
    outage.backend.fail("queue", error=squeue_down)
    report = outage.sync(SUBMITTED_AT + 50)
    assert report.degraded == {}
    assert report.errors == {
        "local": f"{DOWN}; squeue failed too: squeue failed on local: Unable to contact slurm "
        "controller"
    }
    assert get_session(catalog, name).state == "RUNNING"
