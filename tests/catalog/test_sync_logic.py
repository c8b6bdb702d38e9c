"""Sync's decisions above the backend seam, against the shipped fake cluster
(:class:`~nsml_hpc.backends.fake.FakeBackend`): these tests check what sync asks and how it
applies the answers, not that a Slurm path works (the integration tests do that against the
real sandbox)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsml_hpc.backends.fake import FakeBackend, FakeJob, MemoryFiles, Step
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import metric_lines
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import get_session, mark_submitted, reserve_session
from nsml_hpc.config.identity import current_user
from nsml_hpc.config.settings import Settings
from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.slurm.states import SessionState
from nsml_hpc.sync.run import SyncReport, sync

SUBMITTED_AT = 10_000.0


class Clock:
    def __init__(self) -> None:
        self.now = SUBMITTED_AT

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def backend(clock: Clock) -> FakeBackend:
    return FakeBackend(clock=clock)


def _sync_at(
    catalog: Catalog, settings: Settings, backend: FakeBackend, clock: Clock, now: float
) -> SyncReport:
    """One sync at ``now``, when the fake cluster's clock says ``now`` too."""
    clock.now = now
    return sync(catalog, settings, lambda cluster: backend, now=now)


def _asked(backend: FakeBackend) -> list[tuple[str, list[str]]]:
    return [(call.method, list(call.job_ids)) for call in backend.calls]


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
        user=current_user(),  # the account the fake cluster runs jobs as (backend.user)
        run_dir_for=lambda n: str(tmp_path / str(n)),
        is_free=lambda n: True,
        now=SUBMITTED_AT,
    )
    assert record.id is not None
    mark_submitted(catalog, record.id, job_id=job_id, cluster="local", now=SUBMITTED_AT)
    return record.name


def test_a_fresh_job_missing_from_sacct_waits_out_the_grace_period(
    catalog: Catalog, settings: Settings, tmp_path: Path, backend: FakeBackend, clock: Clock
) -> None:
    name = _session(catalog, tmp_path, "41")
    _sync_at(catalog, settings, backend, clock, SUBMITTED_AT + 5)
    assert _asked(backend) == [("query", ["41"])]
    since = backend.calls[0].since
    assert since is not None and since < SUBMITTED_AT
    assert get_session(catalog, name).state == SessionState.SUBMITTED


def test_after_the_grace_period_squeue_is_asked_once_then_the_job_is_lost(
    catalog: Catalog, settings: Settings, tmp_path: Path, backend: FakeBackend, clock: Clock
) -> None:
    names = [_session(catalog, tmp_path, job) for job in ("41", "42")]
    # 41: Slurm knows nothing of it; 42: queued, but slurmdbd has not recorded it yet
    backend.add(FakeJob("42", reason="Priority", submitted_at=SUBMITTED_AT, in_accounting=False))
    _sync_at(catalog, settings, backend, clock, SUBMITTED_AT + 120)
    assert _asked(backend) == [("query", ["41", "42"]), ("queue", ["41", "42"])]
    assert get_session(catalog, names[0]).state == SessionState.LOST
    pending = get_session(catalog, names[1])
    assert (pending.state, pending.reason) == (SessionState.PENDING, "Priority")


def test_pending_reasons_come_from_one_squeue_call_for_all_pending_jobs(
    catalog: Catalog, settings: Settings, tmp_path: Path, backend: FakeBackend, clock: Clock
) -> None:
    names = [_session(catalog, tmp_path, job) for job in ("51", "52", "53")]
    backend.add(
        *(FakeJob(job, reason="Resources", submitted_at=SUBMITTED_AT) for job in ("51", "52")),
        FakeJob("53", "RUNNING", None, submitted_at=SUBMITTED_AT, started_at=SUBMITTED_AT + 1),
    )
    _sync_at(catalog, settings, backend, clock, SUBMITTED_AT + 5)
    assert _asked(backend) == [("query", ["51", "52", "53"]), ("queue", ["51", "52"])]
    assert [get_session(catalog, n).reason for n in names] == ["Resources", "Resources", None]


def test_the_poll_floor_keeps_a_second_sync_from_asking(
    catalog: Catalog, settings: Settings, tmp_path: Path, backend: FakeBackend, clock: Clock
) -> None:
    _session(catalog, tmp_path, "61")
    first = _sync_at(catalog, settings, backend, clock, SUBMITTED_AT + 5)
    second = _sync_at(catalog, settings, backend, clock, SUBMITTED_AT + 5.5)
    assert (first.queried, second.skipped_by_floor) == (["local"], ["local"])
    assert len(backend.calls) == 1


def test_finished_sessions_are_not_asked_about_again(
    catalog: Catalog, settings: Settings, tmp_path: Path, backend: FakeBackend, clock: Clock
) -> None:
    name = _session(catalog, tmp_path, "71")
    backend.add(FakeJob("71", submitted_at=SUBMITTED_AT))
    clock.now = SUBMITTED_AT + 3
    backend.apply("71", Step("FAILED", exit_code=3))
    _sync_at(catalog, settings, backend, clock, SUBMITTED_AT + 5)
    _sync_at(catalog, settings, backend, clock, SUBMITTED_AT + 50)
    record = get_session(catalog, name)
    assert (record.state, record.exit_code) == (SessionState.FAILED, 3)
    assert _asked(backend) == [("query", ["71"])]


def test_a_running_jobs_growing_elapsed_time_writes_nothing(
    catalog: Catalog, settings: Settings, tmp_path: Path, backend: FakeBackend, clock: Clock
) -> None:
    name = _session(catalog, tmp_path, "81")
    backend.add(FakeJob("81", submitted_at=SUBMITTED_AT))
    backend.apply("81", Step("RUNNING"))
    first = _sync_at(catalog, settings, backend, clock, SUBMITTED_AT + 5)
    second = _sync_at(catalog, settings, backend, clock, SUBMITTED_AT + 45)
    assert (first.state_changes, second.state_changes) == (1, 0)
    assert get_session(catalog, name).updated_at == SUBMITTED_AT + 5
    assert backend.query(["81"], since=0)[0].elapsed_s == 45.0  # sacct's Elapsed did grow


def test_each_sync_asks_sacct_once_and_reads_the_run_directories_in_one_round_trip(
    catalog: Catalog, settings: Settings, tmp_path: Path, clock: Clock
) -> None:
    files = MemoryFiles(clock=clock)
    backend = FakeBackend(files=files, clock=clock)
    names = [_session(catalog, tmp_path, job) for job in ("91", "92", "93")]
    backend.add(*(FakeJob(job, submitted_at=SUBMITTED_AT) for job in ("91", "92", "93")))
    for job in ("91", "92"):
        backend.script(job, Step("RUNNING"), Step("RUNNING"), Step("COMPLETED"))
    backend.script("93", Step("PENDING", reason="Resources"), Step("RUNNING"), Step("FAILED"))
    run_dirs = [get_session(catalog, name).run_dir for name in names]
    for run_dir in run_dirs:
        files.make_dirs(run_dir)
    states = []
    for tick in range(3):
        backend.advance()
        for run_dir in run_dirs[:2]:
            files.append(f"{run_dir}/metrics.jsonl", f'{{"step": {tick}, "loss": 1.5}}\n'.encode())
        files.calls.clear()
        _sync_at(catalog, settings, backend, clock, SUBMITTED_AT + 10 * (tick + 1))
        assert files.calls.count("sizes") == 1 and files.calls.count("read_many") == 1
        states.append([get_session(catalog, name).state for name in names])
    assert backend.count("query") == 3
    assert [call.job_ids for call in backend.calls_to("queue")] == [("93",)]  # its reason
    assert states == [
        ["RUNNING", "RUNNING", "PENDING"],
        ["RUNNING", "RUNNING", "RUNNING"],
        ["COMPLETED", "COMPLETED", "FAILED"],
    ]
    first = get_session(catalog, names[0])
    assert first.id is not None
    assert [line["step"] for line in metric_lines(catalog, first.id)] == [0, 1, 2]
