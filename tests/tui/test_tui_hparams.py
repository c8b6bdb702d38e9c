"""The TUI's ``h`` on a session: change its hyperparameters while it runs (what
``nsml-hpc set`` does), refused changes shown in the dialog, nothing written for them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from textual.widgets import Input, Static, Switch

from nsml_hpc.catalog.sessions import events_of, get_session
from tests.tui.conftest import TuiWorld, settle
from tests.tui.shipped import HParamDialog, NsmlApp, SessionScreen


def _drive(app: NsmlApp, script: Any) -> None:
    async def run() -> None:
        async with app.run_test(size=(120, 34)) as pilot:
            await settle(pilot)
            await script(pilot, app)

    asyncio.run(run())


def test_h_sets_a_running_sessions_hyperparameters(world: TuiWorld) -> None:
    run_dir = Path(get_session(world.workspace.catalog, "mnist/2").run_dir)

    async def script(pilot: Any, app: NsmlApp) -> None:
        assert isinstance(app.screen, SessionScreen)
        await pilot.press("h")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, HParamDialog)
        await pilot.press(*"lr=oops")
        await pilot.press("enter")
        await settle(pilot)
        assert not (run_dir / "hparams.json").exists()  # refused: nothing written
        assert isinstance(app.screen, SessionScreen)  # back on the session, the error notified
        await pilot.press("h")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, HParamDialog)
        dialog.query_one(Input).value = "lr=0.01 warmup=5"
        dialog.query_one(Switch).value = True  # warmup is new
        await pilot.press("enter")
        await settle(pilot)

    _drive(world.app(open_session="mnist/2"), script)
    document = json.loads((run_dir / "hparams.json").read_text())
    assert document["version"] == 1 and document["values"] == {"lr": 0.01, "warmup": 5}
    record = get_session(world.workspace.catalog, "mnist/2")
    assert record.id is not None
    requested = [
        e for e in events_of(world.workspace.catalog, record.id) if e.kind == "hparam_requested"
    ]
    assert [json.loads(e.data_json)["changes"] for e in requested] == [{"lr": 0.01, "warmup": 5}]


def test_the_dialog_refuses_text_that_is_no_change(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        await pilot.press("h")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, HParamDialog)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, HParamDialog)
        assert "at least one change" in str(app.screen.query_one("#error", Static).render())

    _drive(world.app(open_session="mnist/2"), script)
