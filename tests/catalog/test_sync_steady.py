"""The steady sync of one process (the TUI syncs every second): what did not change since its
last sync is not computed again, and every change still is. The shipped fake cluster stands
in for Slurm (in memory); run directories, catalog and watch list are real files."""

from __future__ import annotations

from pathlib import Path

from nsml_hpc.catalog.schema import open_catalog
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.config.settings import Settings
from nsml_hpc.sync import watchlist
from tests.catalog.test_sync_file_first import World, started
from tests.catalog.test_sync_logic import SUBMITTED_AT


def _world(nsml_env: Path, tmp_path: Path) -> World:
    url = f"sqlite:///{nsml_env / 'catalog.db'}"
    settings = Settings(catalog_url=url, run_root=tmp_path / "runs", submit_grace_seconds=60.0)
    return World(open_catalog(url), settings, tmp_path)


def test_a_sync_that_changed_nothing_keeps_the_watch_list_and_any_change_rewrites_it(
    nsml_env: Path, tmp_path: Path
) -> None:
    world = _world(nsml_env, tmp_path)
    name = world.session("71")
    world.slurm("71", "RUNNING", at=SUBMITTED_AT + 1)
    world.sync(SUBMITTED_AT + 1)  # asks Slurm (a fresh session)
    world.events(name, started("71", SUBMITTED_AT + 2, heartbeat=1000))
    world.sync(SUBMITTED_AT + 3)
    world.sync(SUBMITTED_AT + 4)
    path = watchlist.watch_file(world.settings.catalog_url)
    written = path.read_bytes()
    assert b'"written_at":' in written
    world.sync(SUBMITTED_AT + 5)  # nothing new, nothing written: the same list holds
    assert path.read_bytes() == written
    # a new line in a watched file: the scrape writes, and the list is written again
    world.events(name, {"event": "note", "time": SUBMITTED_AT + 6, "job_id": "71"})
    world.sync(SUBMITTED_AT + 7)
    assert path.read_bytes() != written
    # a list removed (or replaced) by another process is written again
    watchlist.forget(world.settings.catalog_url)
    world.sync(SUBMITTED_AT + 8)
    assert path.exists()
    assert get_session(world.catalog, name).state == "RUNNING"
