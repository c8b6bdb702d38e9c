import asyncio
from pathlib import Path

from tests.tui.conftest import TuiWorld

OUT = Path("/tmp/wt6shots")


async def settle(pilot):
    from textual.worker import WorkerState
    import time
    deadline = time.monotonic() + 10
    quiet = 0
    while time.monotonic() < deadline and quiet < 3:
        await pilot.pause(0.02)
        busy = [w for w in pilot.app.workers if w.group != "sync" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)]
        quiet = 0 if busy else quiet + 1
    print([ (w.name, w.state) for w in pilot.app.workers])


def test_look(world: TuiWorld) -> None:
    asyncio.run(_look(world))


async def _look(world: TuiWorld) -> None:
    OUT.mkdir(exist_ok=True)
    app = world.app()
    async with app.run_test(size=(120, 34)) as pilot:
        await settle(pilot)
        app.save_screenshot(str(OUT / "sessions.svg"))
        await pilot.press("g")
        await settle(pilot)
        app.save_screenshot(str(OUT / "grouped.svg"))
        await pilot.press("g")
        await settle(pilot)
        await pilot.press("down", "enter")
        await settle(pilot)
        app.save_screenshot(str(OUT / "session_overview.svg"))
        await pilot.press("2")
        await settle(pilot)
        await pilot.pause(0.3)
        await settle(pilot)
        app.save_screenshot(str(OUT / "session_metrics.svg"))
        await pilot.press("3")
        await settle(pilot)
        await pilot.pause(1.2)
        await settle(pilot)
        app.save_screenshot(str(OUT / "session_logs.svg"))
        await pilot.press("escape")
        await settle(pilot)
