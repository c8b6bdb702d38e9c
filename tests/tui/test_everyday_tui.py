"""Regression tests for the TUI defects of issue 15's walkthrough: the metrics tab drew one
curve while two were ticked (a slow load for an earlier pick landed last), the cluster
screen of a remote cluster showed the local user's queue, and compare ordered ``proj/10``
before ``proj/2``. Each failed before its fix."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from textual.widgets import SelectionList

from tests.tui.conftest import NOW, TuiWorld, settle
from tests.tui.shipped import ClusterScreen, MetricPlot, NsmlApp, SessionScreen, SessionTable


def test_the_metrics_tab_draws_every_ticked_metric_even_when_an_older_load_ends_last(
    world: TuiWorld,
) -> None:
    workspace = world.workspace
    real = workspace.metric_series
    release = threading.Event()
    drawn: list[list[str]] = []

    def slow_for_the_first_pick(session: str, metric: str, buckets: int) -> Any:
        # The load for the first pick (val_loss alone) waits until the second pick's load
        # has been drawn, then ends: its result is stale by then.
        if metric == "val_loss" and not release.is_set():
            release.wait(10)
        return real(session, metric, buckets)

    workspace.metric_series = slow_for_the_first_pick  # type: ignore[method-assign]

    async def run() -> None:
        app = world.app(open_session="mnist/1")
        async with app.run_test(size=(120, 34)) as pilot:
            await pilot.pause(0.3)
            screen = app.screen
            assert isinstance(screen, SessionScreen)
            plot = screen.query_one(MetricPlot)
            original = plot.show_curves

            def record(curves: list[tuple[str, Any]], *, title: str = "", marks: Any = ()) -> None:
                drawn.append([label for label, _ in curves])
                original(curves, title=title, marks=marks)

            plot.show_curves = record  # type: ignore[method-assign]
            await pilot.press("2")
            picker = screen.query_one("#metric-picker", SelectionList)
            for _ in range(100):
                if picker.option_count:
                    break
                await pilot.pause(0.05)
            # tick val_acc while the first load (val_loss alone) still runs; the new load
            # reads val_loss too, so let it through once the second pick is asked for
            picker.select("val_acc")
            await pilot.pause(0.2)
            release.set()
            await settle(pilot)
            await pilot.pause(0.3)
            assert sorted(picker.selected) == ["val_acc", "val_loss"]
            assert drawn, "nothing was drawn"
            assert sorted(drawn[-1]) == ["val_acc", "val_loss"], drawn

    asyncio.run(run())


def test_the_cluster_screen_shows_the_clusters_user_not_this_machines(
    world: TuiWorld,
) -> None:
    world.backend.user = "carol"  # the profile's (or ~/.ssh/config's) account on the cluster
    asked: list[str] = []
    original = world.backend.user_queue

    def user_queue(user: str) -> Any:
        asked.append(user)
        return original(user)

    world.backend.user_queue = user_queue  # type: ignore[method-assign]

    async def run() -> None:
        app = NsmlApp(world.workspace, clock=lambda: NOW, syncer=world.sync, sync_interval=3600)
        async with app.run_test(size=(120, 34)) as pilot:
            await settle(pilot)
            app.push_screen(ClusterScreen())
            await settle(pilot)
            await pilot.pause(0.2)
            screen = app.screen
            assert isinstance(screen, ClusterScreen)
            assert screen.overview is not None
            assert screen.overview.user == "carol"

    asyncio.run(run())
    assert asked == ["carol"]


def test_compare_lists_marked_sessions_in_counting_order(world: TuiWorld) -> None:
    from nsml_hpc.formatting import sorted_sessions

    assert sorted_sessions(["proj/10", "proj/2", "a/3", "proj/1"]) == [
        "a/3",
        "proj/1",
        "proj/2",
        "proj/10",
    ]

    async def run() -> None:
        app = world.app()
        async with app.run_test(size=(120, 34)) as pilot:
            await settle(pilot)
            table = app.screen.query_one(SessionTable)
            table.set_marks({"mnist/10", "mnist/2", "mnist/1"})
            assert table.targets() == ["mnist/1", "mnist/2", "mnist/10"]

    asyncio.run(run())
