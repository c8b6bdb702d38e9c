"""``ps`` skips its sync only when the last full sync's watch list says a sync now would do
nothing (:mod:`nsml_hpc.sync.watchlist`): with live sessions, every change a sync would act
on makes ``ps`` run the full sync (a new metrics line, a new event, a captured log that grew
or one a due look finds, a new snapshot, the Slurm clock coming due, a wrapper's heartbeat
going silent, a user's action), nothing changed prints what the full path prints, and a
damaged or foreign watch list is never trusted. The shipped fake cluster stands in for Slurm
(in memory); run directories, catalog and watch list are real files; time is a test clock."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nsml_hpc.backends.fake import FakeBackend, Step
from nsml_hpc.backends.files import LocalFiles
from nsml_hpc.cli import common, main
from nsml_hpc.config.cluster_profiles import ClusterProfile
from nsml_hpc.config.settings import load_settings
from nsml_hpc.job.snapshot_store import PendingSnapshot
from nsml_hpc.sync import watchlist

T0 = 1_900_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class World:
    """One user, the CLI, a fake Slurm, and a count of the full syncs ``ps`` ran."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
        self.clock = Clock()
        self.capsys = capsys
        self.backend = FakeBackend(files=LocalFiles(), clock=self.clock)
        self.full_syncs = 0
        monkeypatch.setattr(time, "time", self.clock)

        def make_backend(profile: ClusterProfile, **_: object) -> FakeBackend:
            return self.backend

        monkeypatch.setattr("nsml_hpc.context.make_backend", make_backend)
        real = common.sync_quietly

        def counted(workspace: Any, clusters: Any = None) -> None:
            self.full_syncs += 1
            real(workspace, clusters)

        monkeypatch.setattr(common, "sync_quietly", counted)

    def run(self, *argv: str) -> str:
        self.capsys.readouterr()
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        assert code == 0, err
        return out

    def ps(self) -> bool:
        """One ``ps``; True when it ran the full sync."""
        before = self.full_syncs
        self.run("ps", "--json")
        return self.full_syncs > before

    def tick(self, seconds: float = 1.0) -> None:
        self.clock.now += seconds

    def submit(self, project_dir: Path) -> Path:
        (project_dir / "train.py").write_text("print('hi')\n")
        created = json.loads(self.run("submit", "--json", "train.py"))
        return Path(created["run_dir"])

    def settle(self) -> None:
        """``ps`` until one runs no full sync (a sync that asked Slurm is followed by one
        that did not, which writes the watch list), then one more that must be quick."""
        for _ in range(4):
            self.tick()
            if not self.ps():
                return
        raise AssertionError("ps never settled")


def write_lines(path: Path, *lines: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line) + "\n")


@pytest.fixture
def world(
    nsml_env: Path,
    project_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[World]:
    # The Slurm clock: a pending session is asked every 20 s, a running one every 80 s.
    monkeypatch.setenv("NSML_HPC_SLURM_FLOOR", "20")
    monkeypatch.setenv("NSML_HPC_POLL_FLOOR", "1")
    yield World(monkeypatch, capsys)


def running(world: World, project_dir: Path, *, heartbeat: float = 1000.0) -> Path:
    """A session whose job runs, its wrapper alive (``heartbeat``), with one metric line."""
    run_dir = world.submit(project_dir)
    job_id = next(iter(world.backend.jobs))
    world.backend.apply(job_id, Step("RUNNING"))
    write_lines(
        run_dir / "events.jsonl",
        {"event": "started", "time": world.clock.now, "job_id": job_id, "heartbeat": heartbeat},
    )
    write_lines(run_dir / "metrics.jsonl", {"step": 1, "loss": 1.0})
    world.settle()
    assert not world.ps()  # quiet: the watch list holds
    folders = json.loads(watchlist.watch_file(load_settings().catalog_url).read_text())["paths"]
    paths = {f"{folder}/{name}" for folder, names in folders.items() for name in names}
    assert {f"{run_dir}/metrics.jsonl", f"{run_dir}/events.jsonl", f"{run_dir}/snapshots"} <= set(
        paths
    )
    return run_dir


def test_nothing_new_skips_the_sync_and_prints_what_the_full_path_prints(
    world: World, project_dir: Path
) -> None:
    running(world, project_dir)
    world.tick()
    syncs = world.full_syncs
    quick = world.run("ps", "--json")
    table = world.run("ps")
    assert world.full_syncs == syncs  # no sync
    watchlist.forget(load_settings().catalog_url)  # no watch list: the full way, same time
    full = world.run("ps", "--json")
    assert world.full_syncs == syncs + 1
    assert quick == full
    assert world.run("ps") == table
    assert world.full_syncs == syncs + 1  # the full sync wrote a new watch list
    assert json.loads(full)[0]["state"] == "RUNNING"


def test_a_new_metrics_line_runs_the_sync(world: World, project_dir: Path) -> None:
    run_dir = running(world, project_dir)
    write_lines(run_dir / "metrics.jsonl", {"step": 2, "loss": 0.5})
    world.tick()
    assert world.ps()
    rows = json.loads(world.run("ps", "--json"))
    assert rows[0]["last_step"] == 2
    assert not world.ps()


def test_a_new_event_line_runs_the_sync(world: World, project_dir: Path) -> None:
    run_dir = running(world, project_dir)
    job_id = next(iter(world.backend.jobs))
    write_lines(
        run_dir / "events.jsonl", {"event": "alive", "time": world.clock.now, "job_id": job_id}
    )
    world.tick()
    assert world.ps()
    world.tick()
    assert not world.ps()


def test_a_captured_log_that_grows_or_appears_runs_the_sync(
    world: World, project_dir: Path
) -> None:
    run_dir = running(world, project_dir)
    logs = run_dir / "code" / "logs"
    logs.mkdir(parents=True)
    # A new log: the sync looks for new logs every 30 s; the watch list lasts until then.
    (logs / "metrics.csv").write_text("step,loss\n1,0.9\n")
    world.tick()
    first_quick = not world.ps()
    world.tick(31)
    assert world.ps()  # the look is due: the full sync, which finds the log
    world.tick()
    assert not world.ps()
    assert first_quick  # what a full sync would not have looked at yet (same answer)
    # The known log grows: its size is watched.
    with (logs / "metrics.csv").open("a") as handle:
        handle.write("2,0.8\n")
    world.tick()
    assert world.ps()
    world.tick()
    assert not world.ps()


def test_a_new_snapshot_runs_the_sync(world: World, project_dir: Path) -> None:
    run_dir = running(world, project_dir)
    job_id = next(iter(world.backend.jobs))
    pending = PendingSnapshot.begin(run_dir / "snapshots", "ep1")
    (pending.folder / "model.bin").write_bytes(b"weights")
    pending.commit(step=1, metrics={}, job_id=job_id, session="proj/1", restart_count=0)
    world.tick()
    assert world.ps()
    assert "ep1" in world.run("show", "proj/1", "--no-sync")


def test_the_slurm_clock_coming_due_runs_the_sync(world: World, project_dir: Path) -> None:
    world.submit(project_dir)  # pending: Slurm is asked every floor (20 s)
    world.settle()
    assert not world.ps()
    asked = world.backend.count("query")
    world.tick(10)
    assert not world.ps()
    world.tick(11)  # 22 s after the last query
    assert world.ps()
    assert world.backend.count("query") == asked + 1


def test_a_heartbeat_deadline_passing_runs_the_sync(world: World, project_dir: Path) -> None:
    running(world, project_dir, heartbeat=4.0)  # silent 10 s after the last sign of life
    world.tick(4)
    assert not world.ps()
    world.tick(8)
    assert world.ps()


def test_a_users_action_runs_the_sync(world: World, project_dir: Path) -> None:
    running(world, project_dir)
    settings = load_settings()
    from nsml_hpc.workspace import Workspace

    with Workspace.open(settings) as workspace:
        workspace.ask_slurm_soon(["local"], "asked for (test)")
    world.tick()
    assert world.ps()


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: "{not json",
        lambda data: json.dumps({**data, "catalog_url": "sqlite:////elsewhere.db"}),
        lambda data: json.dumps({**data, "catalog_file": "/elsewhere.db"}),
        lambda data: json.dumps({**data, "user": "somebody-else"}),
        lambda data: json.dumps({**data, "revision": "0001_initial"}),
        lambda data: json.dumps({**data, "settings": "0" * 64}),
        lambda data: json.dumps({**data, "format": 999}),
        lambda data: json.dumps({**data, "fingerprint": "0" * 64}),
        lambda data: json.dumps({**data, "paths": []}),
        lambda data: json.dumps({**data, "paths": {"/": []}}),
        lambda data: json.dumps({**data, "paths": {"/": {"x": "y"}}}),
        lambda data: json.dumps({**data, "valid_until": "soon"}),
        lambda data: json.dumps({**data, "written_at": data["written_at"] + 3600}),
        lambda data: json.dumps({k: v for k, v in data.items() if k != "valid_until"}),
        lambda data: json.dumps([data]),
        lambda data: "",
    ],
)
def test_a_damaged_or_foreign_watch_list_runs_the_sync(
    world: World, project_dir: Path, damage: Any
) -> None:
    running(world, project_dir)
    path = watchlist.watch_file(load_settings().catalog_url)
    data = json.loads(path.read_text())
    path.write_text(damage(data))
    world.tick()
    assert world.ps()


def test_a_watched_path_that_vanished_runs_the_sync(world: World, project_dir: Path) -> None:
    run_dir = running(world, project_dir)
    (run_dir / "metrics.jsonl").unlink()
    world.tick()
    assert world.ps()


def test_no_watch_list_while_a_sync_leaves_bytes_to_read(
    world: World, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog (a sync reads at most MAX_READ_BYTES a file): every ``ps`` syncs until the
    sync has read everything, then the watch list holds again."""
    run_dir = running(world, project_dir)
    monkeypatch.setattr("nsml_hpc.sync.run.MAX_READ_BYTES", 100)
    write_lines(run_dir / "metrics.jsonl", *({"step": n, "loss": 1.0 / n} for n in range(2, 12)))
    full = 0
    for _ in range(12):
        world.tick()
        if not world.ps():
            break
        full += 1
    assert full >= 3  # ~300 bytes, 100 a sync
    assert json.loads(world.run("ps", "--json"))[0]["last_step"] == 11


def test_no_watch_list_for_a_sync_that_warned(world: World, project_dir: Path) -> None:
    """What the full path prints (a refused line) is printed again by the next full sync,
    never skipped by the watch list."""
    run_dir = running(world, project_dir)
    with (run_dir / "metrics.jsonl").open("a") as handle:
        handle.write("not json\n")
    world.tick()
    assert world.ps()
    assert not watchlist.watch_file(load_settings().catalog_url).exists()
    world.tick()
    assert world.ps()  # nothing new: this one writes the watch list
    world.tick()
    assert not world.ps()


def test_no_watch_list_where_run_directories_are_not_on_this_machine(
    world: World, project_dir: Path
) -> None:
    """Run directories the sync reads through anything but this machine's file system (SSH;
    here the fake's in-memory files) cannot be stat'ed by ``ps``: it syncs every time."""
    from nsml_hpc.backends.fake_files import MemoryFiles

    running(world, project_dir)
    world.backend.files = MemoryFiles("local", clock=world.clock)
    watchlist.forget(load_settings().catalog_url)  # (a profile changed: the settings did)
    for _ in range(3):
        world.tick()
        assert world.ps()
    assert not watchlist.watch_file(load_settings().catalog_url).exists()


def test_an_ended_session_is_watched_no_longer_than_its_recently_ended_window(
    world: World, project_dir: Path
) -> None:
    run_dir = running(world, project_dir)
    job_id = next(iter(world.backend.jobs))
    ended_at = world.clock.now
    write_lines(
        run_dir / "events.jsonl",
        {"event": "ended", "time": ended_at, "job_id": job_id, "exit_code": 0},
    )
    world.backend.apply(job_id, Step("COMPLETED", exit_code=0))
    for _ in range(6):  # the end, its confirmation by Slurm, and what follows
        world.tick(25)
        world.ps()
    path = watchlist.watch_file(load_settings().catalog_url)
    if path.exists():
        data = json.loads(path.read_text())
        assert data["valid_until"] <= ended_at + 120 + 30
    world.tick(200)  # long after the window: nothing of the caller's is left to sync
    world.ps()
    assert json.loads(world.run("ps", "--json"))[0]["state"] == "COMPLETED"


def test_lists_of_catalogs_no_sync_wrote_to_for_an_hour_are_removed(
    world: World, project_dir: Path
) -> None:
    import os

    running(world, project_dir)
    folder = watchlist.watch_file(load_settings().catalog_url).parent
    old, recent = folder / "old.json", folder / "recent.json"
    for path, age in ((old, watchlist.STALE_SECONDS + 60), (recent, 60)):
        path.write_text("{}")
        os.utime(path, (time.time_ns() / 1e9, Path(folder).stat().st_mtime - age))
    watchlist.forget(load_settings().catalog_url)
    world.tick()
    assert world.ps()  # the full sync writes a list, and prunes
    assert recent.exists() and not old.exists()
    assert watchlist.watch_file(load_settings().catalog_url).exists()
