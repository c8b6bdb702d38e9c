import asyncio
import time
from pathlib import Path

from textual.worker import WorkerState

from tests.tui.conftest import TuiWorld

OUT = Path("/tmp/wt6shots")


async def settle(pilot):
    deadline = time.monotonic() + 10
    quiet = 0
    while time.monotonic() < deadline and quiet < 3:
        await pilot.pause(0.02)
        busy = [w for w in pilot.app.workers if w.group != "sync" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)]
        quiet = 0 if busy else quiet + 1


def test_look(world: TuiWorld) -> None:
    asyncio.run(_look(world))


async def _look(world: TuiWorld) -> None:
    OUT.mkdir(exist_ok=True)
    app = world.app()
    async with app.run_test(size=(120, 34)) as pilot:
        await settle(pilot)
        app.save_screenshot(str(OUT / "sessions.svg"))
        await pilot.press("down", "down", "down", "down", "down", "enter")
        await settle(pilot)
        app.save_screenshot(str(OUT / "session_overview.svg"))
        await pilot.press("4")
        await settle(pilot)
        app.save_screenshot(str(OUT / "session_snapshots.svg"))
        await pilot.press("f")
        await settle(pilot)
        app.save_screenshot(str(OUT / "fork.svg"))
        await pilot.press("escape", "escape")
        await settle(pilot)
        await pilot.press("space", "up", "space", "up", "space", "c")
        await settle(pilot)
        await pilot.pause(0.2)
        await settle(pilot)
        app.save_screenshot(str(OUT / "compare.svg"))
        await pilot.press("escape", "C")
        await settle(pilot)
        app.save_screenshot(str(OUT / "cluster.svg"))
        await pilot.press("question_mark")
        await settle(pilot)
        app.save_screenshot(str(OUT / "help.svg"))
        await pilot.press("escape", "escape", "x")
        await settle(pilot)
        app.save_screenshot(str(OUT / "confirm.svg"))
