"""File-first sync above the backend seam: the wrappers' events give the state before Slurm is
asked, the Slurm clock decides when it is asked, and accounting has the last word. (A recording
stand-in backend: these tests check what sync asks and how it applies what it reads; the real
Slurm paths run on the sandbox in tests/slurm/test_file_first.py.) The shipped fake cluster
stands in for Slurm; the run directories are real files."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event

from nsml_hpc.backends.fake import FakeBackend, FakeJob, Step
from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.catalog.allocations import Allocation, store_allocations
from nsml_hpc.catalog.engine import Catalog
from nsml_hpc.catalog.metrics import CursorState, store_event_batch
from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import events_of, get_session, jobs_of, state_history
from nsml_hpc.catalog.slurm_clock import clock_rows
from nsml_hpc.cli import main, session_commands
from nsml_hpc.config.settings import Settings
from nsml_hpc.config.site_policy import read_policy_file
from nsml_hpc.runfiles.scrape import parse_event_lines
from nsml_hpc.sync.events_state import FROM_EVENTS_REASON
from nsml_hpc.sync.run import SyncReport, sync
from nsml_hpc.workspace import Workspace
from tests.catalog.test_follow import _reuse
from tests.catalog.test_sync_logic import SUBMITTED_AT, _session


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return open_catalog(f"sqlite:///{tmp_path / 'c.db'}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The default clock: Slurm every 60 s, 5 s after an action, 60 commands an hour."""
    return Settings(catalog_url="unused", run_root=tmp_path, submit_grace_seconds=60.0)


class World:
    def __init__(self, catalog: Catalog, settings: Settings, tmp_path: Path) -> None:
        self.catalog, self.settings, self.tmp_path = catalog, settings, tmp_path
        self.now = SUBMITTED_AT
        self.backend = FakeBackend(files=LocalFiles(), clock=lambda: self.now)

    def session(self, job_id: str) -> str:
        name = _session(self.catalog, self.tmp_path, job_id)
        Path(get_session(self.catalog, name).run_dir).mkdir(parents=True, exist_ok=True)
        return name

    def slurm(self, job_id: str, state: str, *, at: float | None = None, **step: Any) -> None:
        """Slurm moves the job to ``state`` (at ``at``)."""
        self.now = at if at is not None else self.now
        if job_id not in self.backend.jobs:
            self.backend.add(FakeJob(job_id, submitted_at=SUBMITTED_AT))
        self.backend.apply(job_id, Step(state, **step))

    def events(self, name: str, *lines: dict[str, Any] | str) -> Path:
        path = Path(get_session(self.catalog, name).run_dir) / "events.jsonl"
        with path.open("a", encoding="utf-8") as handle:
            for line in lines:
                handle.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
        return path

    def sync(self, at: float, **kwargs: Any) -> SyncReport:
        self.now = at
        return sync(self.catalog, self.settings, lambda c: self.backend, now=at, **kwargs)

    def asked(self) -> list[tuple[str, list[str]]]:
        return [(call.method, list(call.job_ids)) for call in self.backend.calls]

    def sacct_calls(self) -> int:
        return self.backend.count("query")

    def clear(self) -> None:
        self.backend.calls.clear()


@pytest.fixture
def world(catalog: Catalog, settings: Settings, tmp_path: Path) -> World:
    return World(catalog, settings, tmp_path)


def started(job: str, at: float, **data: Any) -> dict[str, Any]:
    return {"event": "started", "time": at, "job_id": job, "host": "vm", **data}


def ended(job: str, at: float, code: int, **data: Any) -> dict[str, Any]:
    return {"event": "ended", "time": at, "job_id": job, "exit_code": code, **data}


def alive(job: str, at: float) -> dict[str, Any]:
    return {"event": "alive", "time": at, "job_id": job}


def first_query(world: World, job: str, state: str, at: float) -> None:
    """Slurm's first answer (a fresh session is always asked once)."""
    world.slurm(job, state, at=at, reason="Priority" if state == "PENDING" else None)
    world.sync(at)
    world.clear()


def test_completed_and_failed_with_exit_code_show_from_events_without_asking_slurm(
    world: World,
) -> None:
    ok, bad = world.session("41"), world.session("42")
    world.slurm("41", "PENDING", reason="Resources")
    world.slurm("42", "PENDING", reason="Resources")
    world.sync(SUBMITTED_AT + 1)
    world.clear()
    world.events(ok, started("41", SUBMITTED_AT + 2, heartbeat=15))
    world.events(bad, started("42", SUBMITTED_AT + 2, heartbeat=15))
    report = world.sync(SUBMITTED_AT + 3)
    assert world.asked() == []  # inside the floor: the files alone
    assert report.state_changes == 2
    for name in (ok, bad):
        record = get_session(world.catalog, name)
        assert (record.state, record.reason, record.started_at) == (
            "RUNNING",
            None,
            SUBMITTED_AT + 2,
        )
    world.events(ok, ended("41", SUBMITTED_AT + 10, 0))
    world.events(bad, ended("42", SUBMITTED_AT + 10, 3))
    world.sync(SUBMITTED_AT + 11)
    assert world.asked() == []
    done, failed = get_session(world.catalog, ok), get_session(world.catalog, bad)
    assert (done.state, done.exit_code, done.ended_at) == ("COMPLETED", 0, SUBMITTED_AT + 10)
    assert (failed.state, failed.exit_code, failed.reason) == ("FAILED", 3, FROM_EVENTS_REASON)
    # A floor later, accounting confirms: the reason clears, no second state change.
    world.slurm("41", "RUNNING", at=SUBMITTED_AT + 1.8)
    world.slurm("42", "RUNNING")
    world.slurm("41", "COMPLETED", at=SUBMITTED_AT + 10.2)
    world.slurm("42", "FAILED", exit_code=3)
    report = world.sync(SUBMITTED_AT + 61)
    assert world.asked() == [("query", ["41", "42"])]
    assert report.state_changes == 0 and report.disagreements == []
    for name, state in ((ok, "COMPLETED"), (bad, "FAILED")):
        record = get_session(world.catalog, name)
        assert (record.state, record.reason) == (state, None)
        assert record.started_at == SUBMITTED_AT + 1.8  # accounting's start, not the line's
        assert record.id is not None
        states = [change.state for change in state_history(world.catalog, record.id)]
        assert states == ["SUBMITTED", "PENDING", "RUNNING", state]
    world.clear()
    world.sync(SUBMITTED_AT + 999)
    assert world.asked() == []  # confirmed: never asked again


def test_accounting_wins_a_disagreement_and_it_is_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    name = world.session("51")
    first_query(world, "51", "RUNNING", SUBMITTED_AT + 1)
    world.events(name, started("51", SUBMITTED_AT + 1), ended("51", SUBMITTED_AT + 5, 0))
    world.sync(SUBMITTED_AT + 6)
    assert get_session(world.catalog, name).state == "COMPLETED"
    world.slurm("51", "CANCELLED by 0", at=SUBMITTED_AT + 5)
    with caplog.at_level(logging.WARNING, logger="nsml_hpc.sync"):
        report = world.sync(SUBMITTED_AT + 70)
    record = get_session(world.catalog, name)
    assert (record.state, record.reason) == ("CANCELLED", None)
    [line] = report.disagreements
    assert "COMPLETED" in line and "CANCELLED" in line and "accounting wins" in line
    assert line in caplog.text
    assert report.state_changes == 1


def test_accounting_that_lags_behind_an_end_does_not_undo_it(world: World) -> None:
    name = world.session("61")
    first_query(world, "61", "RUNNING", SUBMITTED_AT + 1)
    world.events(name, started("61", SUBMITTED_AT + 1), ended("61", SUBMITTED_AT + 5, 0))
    world.sync(SUBMITTED_AT + 6)
    report = world.sync(SUBMITTED_AT + 70)  # sacct still says RUNNING
    assert world.sacct_calls() == 1
    assert report.state_changes == 0
    record = get_session(world.catalog, name)
    assert (record.state, record.reason) == ("COMPLETED", FROM_EVENTS_REASON)
    assert world.sync(SUBMITTED_AT + 71).state_changes == 0


def test_an_end_is_confirmed_even_while_accounting_had_not_all_of_the_jobs_allocation(
    world: World,
) -> None:
    """slurmdbd may report a job before its partition: such a job's allocation is asked about
    again after it ends (settling). A provisional end of it is still confirmed, not only
    re-asked for its allocation."""
    name = world.session("63")
    first_query(world, "63", "RUNNING", SUBMITTED_AT + 1)
    record = get_session(world.catalog, name)
    assert record.id is not None
    job = jobs_of(world.catalog, [record.id])[record.id][-1]
    assert job.id is not None
    store_allocations(world.catalog, {job.id: (record.id, Allocation(gpus=1), False)}, latest=set())
    world.events(name, started("63", SUBMITTED_AT + 1), ended("63", SUBMITTED_AT + 5, 0))
    world.sync(SUBMITTED_AT + 6)
    assert get_session(world.catalog, name).reason == FROM_EVENTS_REASON
    world.slurm("63", "COMPLETED", at=SUBMITTED_AT + 5)
    world.sync(SUBMITTED_AT + 62)
    assert world.sacct_calls() == 1
    record = get_session(world.catalog, name)
    assert (record.state, record.reason) == ("COMPLETED", None)


def test_a_start_before_accounting_has_it_is_not_undone_by_its_pending(world: World) -> None:
    name = world.session("62")
    first_query(world, "62", "PENDING", SUBMITTED_AT + 1)
    world.events(name, started("62", SUBMITTED_AT + 59, heartbeat=15))
    world.sync(SUBMITTED_AT + 61, refresh=True)  # asked: sacct still says PENDING
    assert world.sacct_calls() == 1
    assert get_session(world.catalog, name).state == "RUNNING"


def test_an_end_after_a_signal_asks_slurm_at_once(world: World) -> None:
    name = world.session("71")
    first_query(world, "71", "RUNNING", SUBMITTED_AT + 1)
    world.events(name, started("71", SUBMITTED_AT + 1, heartbeat=15))
    world.sync(SUBMITTED_AT + 2)
    world.slurm("71", "CANCELLED by 0", at=SUBMITTED_AT + 9)
    world.events(
        name,
        {"event": "signal", "time": SUBMITTED_AT + 8, "job_id": "71", "signal": "SIGTERM"},
        ended("71", SUBMITTED_AT + 9, 143, signal="SIGTERM"),
    )
    report = world.sync(SUBMITTED_AT + 10)  # 9 s after the last query: the action floor
    assert world.sacct_calls() == 1
    assert "only Slurm knows" in report.slurm_clock["local"]
    record = get_session(world.catalog, name)
    assert (record.state, record.reason) == ("CANCELLED", None)


def test_a_running_session_with_a_live_wrapper_is_confirmed_only_every_four_floors(
    world: World,
) -> None:
    name = world.session("81")
    first_query(world, "81", "RUNNING", SUBMITTED_AT + 1)
    for second in range(2, 245):
        world.events(name, alive("81", SUBMITTED_AT + second))  # the heartbeat
        if second == 2:
            world.events(name, started("81", SUBMITTED_AT + 2, heartbeat=1))
        world.sync(SUBMITTED_AT + second)
    assert world.sacct_calls() == 1  # at +241: four floors after the first query
    assert events_of(world.catalog, get_session(world.catalog, name).id or 0)[0].kind == "started"
    assert all(event.kind != "alive" for event in events_of(world.catalog, 1))


def test_a_wrapper_that_goes_silent_is_asked_about_within_one_floor(world: World) -> None:
    name = world.session("82")
    first_query(world, "82", "RUNNING", SUBMITTED_AT + 1)
    world.events(name, started("82", SUBMITTED_AT + 2, heartbeat=1))
    for second in range(2, 20):
        world.events(name, alive("82", SUBMITTED_AT + second))
        world.sync(SUBMITTED_AT + second)
    assert world.sacct_calls() == 0
    # killed at +20 (kill -9, node failure): no more lines
    world.slurm("82", "NODE_FAIL", at=SUBMITTED_AT + 20)
    asked_at = None
    for second in range(20, 120):
        world.sync(SUBMITTED_AT + second)
        if world.sacct_calls():
            asked_at = second
            break
    assert asked_at is not None and asked_at - 20 <= 60
    assert get_session(world.catalog, name).state == "NODE_FAIL"


def test_a_refresh_asks_after_the_action_floor_and_the_ceiling_defers(world: World) -> None:
    name = world.session("91")
    first_query(world, "91", "PENDING", SUBMITTED_AT + 1)
    assert world.sync(SUBMITTED_AT + 3, refresh=True).queried == []  # the action floor
    assert world.sync(SUBMITTED_AT + 6, refresh=True).queried == ["local"]
    asked = 2  # the first query and this one
    for second in range(16, 3600, 10):
        asked += len(world.sync(SUBMITTED_AT + second, refresh=True).queried)
    assert asked <= 60  # the burst and an hour of refill: the ceiling, not one query per 10 s
    row = clock_rows(world.catalog, world.catalog.user)["local"]
    assert row.deferred > 0
    assert get_session(world.catalog, name).state == "PENDING"


def test_known_pending_reasons_are_kept_without_asking_squeue_every_time(world: World) -> None:
    name = world.session("92")
    world.slurm("92", "PENDING", reason="Priority")
    world.sync(SUBMITTED_AT + 1)
    assert world.asked() == [("query", ["92"]), ("queue", ["92"])]
    world.clear()
    world.slurm("92", "PENDING", reason="Resources")
    world.sync(SUBMITTED_AT + 61)
    assert world.asked() == [("query", ["92"])]
    assert get_session(world.catalog, name).reason == "Priority"  # kept, not re-read
    world.clear()
    world.sync(SUBMITTED_AT + 301)  # five floors after the last squeue: reasons re-read
    assert world.asked() == [("query", ["92"]), ("queue", ["92"])]
    assert get_session(world.catalog, name).reason == "Resources"


# --- bad input: a warning naming the file, Slurm asked, nothing in the catalog goes wrong ---


def _asked_now(world: World, name: str, lines: list[dict[str, Any] | str]) -> SyncReport:
    first_query(world, "99", "RUNNING", SUBMITTED_AT + 1)
    world.slurm("99", "COMPLETED", at=SUBMITTED_AT + 8)
    world.events(name, *lines)
    return world.sync(SUBMITTED_AT + 10)


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        ([started("99", SUBMITTED_AT + 2), ended("99", SUBMITTED_AT + 99_999, 0)], "in the future"),
        ([started("99", SUBMITTED_AT - 99_999)], "before the job was submitted"),
        ([started("99", SUBMITTED_AT + 2), ended("123", SUBMITTED_AT + 3, 0)], "of job 123"),
        ([started("99", SUBMITTED_AT + 2), '{"event": "ended", "time": 1.0, "job_i'], "corrupt"),
        ([started("99", SUBMITTED_AT + 2), "\x00\x00\x00garbage"], "corrupt"),
    ],
)
def test_events_that_cannot_be_trusted_are_named_and_slurm_is_asked(
    world: World, lines: list[dict[str, Any] | str], words: str
) -> None:
    name = world.session("99")
    report = _asked_now(world, name, lines)
    [warning] = [w for w in report.warnings if "its state comes from Slurm" in w]
    run_dir = get_session(world.catalog, name).run_dir
    assert f"{run_dir}/events.jsonl" in warning and words in warning
    assert world.sacct_calls() == 1 and report.queried == ["local"]
    record = get_session(world.catalog, name)
    assert (record.state, record.reason, record.exit_code) == ("COMPLETED", None, 0)
    # later syncs do not warn again, and the files never override accounting
    assert world.sync(SUBMITTED_AT + 11).warnings == []


def test_an_events_file_that_shrank_is_named_read_on_from_its_end_and_slurm_is_asked(
    world: World,
) -> None:
    name = world.session("99")
    first_query(world, "99", "RUNNING", SUBMITTED_AT + 1)
    path = world.events(name, started("99", SUBMITTED_AT + 2, heartbeat=15))
    world.sync(SUBMITTED_AT + 3)
    path.write_text("")  # replaced by an empty file (or cut short)
    world.slurm("99", "FAILED", at=SUBMITTED_AT + 9, exit_code=9)
    report = world.sync(SUBMITTED_AT + 10)
    [warning] = [w for w in report.warnings if "its state comes from Slurm" in w]
    assert str(path) in warning and "shrank" in warning
    assert world.sacct_calls() == 1
    assert get_session(world.catalog, name).state == "FAILED"
    # what is appended to the new file is read (not skipped up to the old offset)
    world.events(name, {"event": "note", "time": SUBMITTED_AT + 11, "job_id": "99"})
    assert world.sync(SUBMITTED_AT + 12).new_events == 1


def test_a_sync_killed_between_storing_events_and_their_state_is_repaired_by_the_next(
    world: World,
) -> None:
    """The events reached the catalog (cursor and rows in one transaction) but the process
    died before it applied their state: the next sync derives it from the stored events."""
    name = world.session("33")
    first_query(world, "33", "RUNNING", SUBMITTED_AT + 1)
    path = world.events(name, started("33", SUBMITTED_AT + 2), ended("33", SUBMITTED_AT + 4, 3))
    raw = path.read_bytes()
    record = get_session(world.catalog, name)
    assert record.id is not None
    batch = parse_event_lines(raw, record.id)
    store_event_batch(world.catalog, record.id, batch, CursorState(), len(raw), SUBMITTED_AT + 5)
    assert get_session(world.catalog, name).state == "RUNNING"
    report = world.sync(SUBMITTED_AT + 6)
    assert report.new_events == 0  # nothing read twice
    record = get_session(world.catalog, name)
    assert (record.state, record.exit_code) == ("FAILED", 3)
    assert len(events_of(world.catalog, record.id or 0)) == 2


def test_a_site_policy_file_that_does_not_parse_is_named_and_slurm_is_still_asked(
    world: World, tmp_path: Path
) -> None:
    broken = tmp_path / "site.toml"
    broken.write_text("[slurm]\nfloor_seconds = \n", encoding="utf-8")
    world.settings = replace(world.settings, site=read_policy_file(broken))
    name = world.session("44")
    world.slurm("44", "RUNNING")
    report = world.sync(SUBMITTED_AT + 1)
    [warning] = report.warnings
    assert str(broken) in warning and "using the built-in policy" in warning
    assert report.queried == ["local"]
    assert get_session(world.catalog, name).state == "RUNNING"
    assert world.settings.slurm_policy.floor_seconds == 60.0


def test_plain_sync_prints_each_disagreement_on_one_line(
    workspace: Workspace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``nsml-hpc sync`` (not only --json and the log) names the session, what its events said
    and what accounting said, one line each."""
    backend = FakeBackend(files=LocalFiles(), clock=lambda: SUBMITTED_AT + 5)
    workspace.use_backend("local", backend)
    name = _session(workspace.catalog, tmp_path, "51")
    run_dir = Path(get_session(workspace.catalog, name).run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [started("51", SUBMITTED_AT + 1), ended("51", SUBMITTED_AT + 5, 0)]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    backend.add(FakeJob("51", submitted_at=SUBMITTED_AT))
    backend.apply("51", Step("RUNNING"))
    backend.apply("51", Step("CANCELLED by 0"))
    monkeypatch.setattr(session_commands, "open_workspace", _reuse(workspace))
    assert main(["sync"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("queried 1 cluster(s)")
    assert out[1:] == [
        f"disagreement: {name}: job 51: its events said COMPLETED (exit 0), accounting says "
        "CANCELLED (exit 0); accounting wins"
    ]
    assert get_session(workspace.catalog, name).state == "CANCELLED"


def test_a_requeue_the_wrapper_writes_goes_through_the_catalog_without_asking_slurm(
    world: World,
) -> None:
    """``started``, ``ended`` with requeue, ``requeued``, ``started`` (restart 1): RUNNING,
    REQUEUED, PENDING, RUNNING again, each from the files within the Slurm floor (no sacct)."""
    name = world.session("37")
    first_query(world, "37", "PENDING", SUBMITTED_AT + 1)
    record = get_session(world.catalog, name)
    assert record.id is not None
    steps: list[tuple[dict[str, Any], str]] = [
        (started("37", SUBMITTED_AT + 2, heartbeat=15), "RUNNING"),
        (ended("37", SUBMITTED_AT + 10, 0, requeue=True, signal="SIGUSR1"), "REQUEUED"),
        ({"event": "requeued", "time": SUBMITTED_AT + 11, "job_id": "37"}, "PENDING"),
        (started("37", SUBMITTED_AT + 20, heartbeat=15, restart_count=1), "RUNNING"),
    ]
    for line, state in steps:
        world.events(name, line)
        at = float(line["time"]) + 1
        report = world.sync(at)
        assert report.state_changes == 1, (line, report)
        assert get_session(world.catalog, name).state == state, line
    assert world.sacct_calls() == 0 and world.asked() == []
    states = [change.state for change in state_history(world.catalog, record.id)]
    assert states == ["SUBMITTED", "PENDING", "RUNNING", "REQUEUED", "PENDING", "RUNNING"]
    final = get_session(world.catalog, name)
    assert (final.reason, final.exit_code) == (None, None)


def test_a_provisional_end_accounting_never_records_is_kept_and_no_longer_asked_about(
    world: World,
) -> None:
    """sacct answers, but never with the job: asked every floor while the end is young; once
    it is ten floors old (and ten minutes) it keeps the files' end, says accounting never
    recorded the job, and is never asked about again."""
    name = world.session("38")
    first_query(world, "38", "RUNNING", SUBMITTED_AT + 1)
    world.events(name, started("38", SUBMITTED_AT + 2), ended("38", SUBMITTED_AT + 5, 3))
    world.sync(SUBMITTED_AT + 6)
    assert get_session(world.catalog, name).reason == FROM_EVENTS_REASON
    world.backend.forget("38")  # accounting lost the job (or never had it)
    asked_at = []
    for second in range(7, 1800):
        before = world.sacct_calls()
        world.sync(SUBMITTED_AT + second)
        if world.sacct_calls() > before:
            asked_at.append(second)
    assert world.asked() == [("query", ["38"])] * len(asked_at)  # never squeue: it ended
    # every floor after the first query (+1) while the end (+5) is younger than 600 s; the
    # query at +661 finds it older and gives up; never again
    assert asked_at == list(range(61, 662, 60)), asked_at
    record = get_session(world.catalog, name)
    assert (record.state, record.exit_code, record.ended_at) == ("FAILED", 3, SUBMITTED_AT + 5)
    assert record.reason is not None and not record.reason.startswith("provisional")
    assert "accounting never recorded job 38" in record.reason
    assert record.id is not None
    states = [change.state for change in state_history(world.catalog, record.id)]
    assert states == ["SUBMITTED", "RUNNING", "FAILED"]  # the state itself never changed


# --- steady syncs of one process: what did not change is neither read nor derived again ---


def _statements(catalog: Catalog) -> list[str]:
    seen: list[str] = []
    sa_event.listen(
        catalog.engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_args: seen.append(" ".join(statement.split())),
    )
    return seen


def test_a_steady_sync_reads_no_events_and_new_events_still_change_the_state(
    world: World,
) -> None:
    name = world.session("61")
    first_query(world, "61", "RUNNING", SUBMITTED_AT + 1)
    world.events(name, started("61", SUBMITTED_AT + 2, heartbeat=15))
    world.sync(SUBMITTED_AT + 3)
    world.sync(SUBMITTED_AT + 4)  # the first sync that does not move its cursor keeps it
    statements = _statements(world.catalog)
    world.sync(SUBMITTED_AT + 5)  # nothing new: the state of the last sync holds
    assert not [s for s in statements if "FROM event " in s]
    assert not [s for s in statements if "FROM scrape_cursor" in s and "updated_at" in s][1:]
    assert get_session(world.catalog, name).state == "RUNNING"
    world.events(name, ended("61", SUBMITTED_AT + 6, 0))
    statements.clear()
    world.sync(SUBMITTED_AT + 7)
    assert [s for s in statements if "FROM event " in s]  # its cursor moved: read again
    record = get_session(world.catalog, name)
    assert (record.state, record.exit_code) == ("COMPLETED", 0)


def test_events_with_a_problem_are_judged_again_at_every_sync(world: World) -> None:
    """A problem is never kept between syncs: the same stored events are read and judged
    again as the clock moves (an event dated in the future may not be, a minute later)."""
    name = world.session("62")
    first_query(world, "62", "PENDING", SUBMITTED_AT + 1)
    world.events(name, started("62", SUBMITTED_AT + 5_000, heartbeat=15))
    report = world.sync(SUBMITTED_AT + 2)
    assert any("in the future" in warning for warning in report.warnings)
    statements = _statements(world.catalog)
    for at in (SUBMITTED_AT + 3, SUBMITTED_AT + 4):
        statements.clear()
        world.sync(at)
        assert [s for s in statements if "FROM event " in s]
    assert get_session(world.catalog, name).state == "PENDING"
