"""How each screen looks (SVG snapshots, pytest-textual-snapshot) over the fixed catalog, with
the clock frozen and HOME set to the test folder, so every run draws the same picture.

Update after an intended change: ``pytest tests/tui/test_tui_snapshots.py --snapshot-update``
and look at the report of the differences before committing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nsml_hpc.sync.run import SyncReport
from tests.tui.conftest import TuiWorld, settle

SIZE = (120, 34)
Compare = Callable[..., bool]


def keys(*presses: str, pause: float = 0.0) -> Callable[[Any], Any]:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        for press in presses:
            await pilot.press(press)
            await settle(pilot)
        if pause:
            await pilot.pause(pause)
            await settle(pilot)

    return run_before


@pytest.fixture(autouse=True)
def _home(home: Path) -> Path:
    return home


def test_sessions_screen(world: TuiWorld, snap_compare: Compare) -> None:
    assert snap_compare(world.app(), run_before=keys(), terminal_size=SIZE)


def test_sessions_grouped_by_project_with_marks(world: TuiWorld, snap_compare: Compare) -> None:
    run_before = keys("g", "down", "space", "space")
    assert snap_compare(world.app(), run_before=run_before, terminal_size=SIZE)


def test_sessions_filtered(world: TuiWorld, snap_compare: Compare) -> None:
    run_before = keys("slash", *"mnist -state:completed", "enter", pause=0.3)
    assert snap_compare(world.app(), run_before=run_before, terminal_size=SIZE)


def test_sessions_with_an_unreachable_cluster(world: TuiWorld, snap_compare: Compare) -> None:
    world.sync_report = SyncReport(
        queried=["local"],
        errors={"local": "sacct failed on local: Problem talking to the database"},
    )
    assert snap_compare(world.app(), run_before=keys(), terminal_size=SIZE)


def test_session_overview(world: TuiWorld, snap_compare: Compare) -> None:
    run_before = keys("down", "enter")
    assert snap_compare(world.app(), run_before=run_before, terminal_size=SIZE)


def test_session_metrics(world: TuiWorld, snap_compare: Compare) -> None:
    run_before = keys("down", "enter", "2", pause=0.2)
    assert snap_compare(world.app(), run_before=run_before, terminal_size=SIZE)


def test_session_logs(world: TuiWorld, snap_compare: Compare) -> None:
    run_before = keys("down", "enter", "3", pause=1.2)
    assert snap_compare(world.app(), run_before=run_before, terminal_size=SIZE)


def test_session_snapshots(world: TuiWorld, snap_compare: Compare) -> None:
    run_before = keys("end", "enter", "4")
    assert snap_compare(world.app(), run_before=run_before, terminal_size=SIZE)


def test_fork_dialog(world: TuiWorld, snap_compare: Compare) -> None:
    run_before = keys("end", "enter", "4", "down", "f")
    assert snap_compare(world.app(), run_before=run_before, terminal_size=SIZE)


def test_stop_confirmation(world: TuiWorld, snap_compare: Compare) -> None:
    run_before = keys("down", "x")
    assert snap_compare(world.app(), run_before=run_before, terminal_size=SIZE)


def test_memo_dialog(world: TuiWorld, snap_compare: Compare) -> None:
    run_before = keys("end", "e")
    assert snap_compare(world.app(), run_before=run_before, terminal_size=SIZE)


def test_compare_screen(world: TuiWorld, snap_compare: Compare) -> None:
    run_before = keys("end", "space", "up", "space", "c", pause=0.2)
    assert snap_compare(world.app(), run_before=run_before, terminal_size=SIZE)


def test_cluster_screen(world: TuiWorld, snap_compare: Compare) -> None:
    assert snap_compare(world.app(), run_before=keys("C"), terminal_size=SIZE)


def test_help_screen(world: TuiWorld, snap_compare: Compare) -> None:
    run_before = keys("question_mark")
    assert snap_compare(world.app(), run_before=run_before, terminal_size=SIZE)
