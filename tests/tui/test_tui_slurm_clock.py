"""The TUI on the Slurm clock: its refresh key asks for an early Slurm query, and the cluster
screen's sinfo/squeue run at the Slurm floor (the action floor when the user presses ``r``),
within the hourly allowance, saying how old its data is when the allowance is short."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.widgets import Static

from nsml_hpc.catalog.slurm_clock import clock_rows
from nsml_hpc.sync.file_first import spend_commands
from tests.tui.conftest import NOW, TuiWorld, settle
from tests.tui.shipped import ClusterScreen, NsmlApp, SessionsScreen


def test_the_refresh_key_asks_slurm_soon(world: TuiWorld) -> None:
    asked: list[tuple[list[str], str]] = []
    original = world.workspace.ask_slurm_soon

    def ask_slurm_soon(clusters: Any, why: str) -> None:
        asked.append((sorted(clusters), why))
        original(clusters, why)

    world.workspace.ask_slurm_soon = ask_slurm_soon  # type: ignore[method-assign]

    async def run() -> None:
        app = world.app()
        async with app.run_test(size=(120, 34)) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, SessionsScreen)
            syncs = world.syncs
            assert asked == []  # the sync loop alone asks for nothing early
            await pilot.press("r")
            for _ in range(100):
                await pilot.pause(0.05)
                if world.syncs > syncs:
                    break
            assert world.syncs > syncs  # and it synced at once

    asyncio.run(run())
    assert asked == [(["local"], "refresh in the TUI")]
    row = clock_rows(world.workspace.catalog, world.workspace.catalog.user)["local"]
    assert row.wanted_why == "refresh in the TUI" and row.wanted_at > 0


def test_the_cluster_screen_asks_at_the_slurm_floor_and_r_after_the_action_floor(
    world: TuiWorld,
) -> None:
    now = [NOW]
    workspace, backend = world.workspace, world.backend
    policy = workspace.settings.slurm_policy
    assert (policy.floor_seconds, policy.action_floor_seconds) == (60.0, 5.0)

    async def run() -> None:
        app = NsmlApp(
            workspace, clock=lambda: now[0], syncer=world.sync, sync_interval=3600, user="alice"
        )
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(pilot)
            await pilot.press("C")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, ClusterScreen)
            assert backend.count("cluster_gpus") == backend.count("user_queue") == 1
            info = screen.query_one("#cluster-info", Static)
            now[0] = NOW + 10  # past the action floor, inside the Slurm floor
            screen._fetch()  # what the screen's timer does
            await settle(pilot)
            assert backend.count("cluster_gpus") == 1
            assert "data from 10 s ago" in str(info.render())
            await pilot.press("r")  # the user asks: the action floor is enough
            await settle(pilot)
            assert backend.count("cluster_gpus") == backend.count("user_queue") == 2
            assert "data from 0 s ago" in str(info.render())
            # The allowance spent (by the sync, say): the next press is served from the catalog.
            spend_commands(workspace.catalog, "local", workspace.catalog.user, policy, now[0], 4)
            now[0] = NOW + 20
            await pilot.press("r")
            await settle(pilot)
            assert backend.count("cluster_gpus") == 2
            text = str(info.render())
            assert "data from 10 s ago" in text
            assert "hourly Slurm allowance (60 commands) spent; next in about" in text

    asyncio.run(run())
    row = clock_rows(workspace.catalog, workspace.catalog.user)["local"]
    assert row.commands == 2 + 2 + 4  # the screen's two answers, and what the test spent
