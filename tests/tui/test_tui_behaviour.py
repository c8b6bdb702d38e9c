"""What the TUI does, driven with Textual's Pilot over the fixed catalog: filtering, sorting,
grouping, opening a session, confirm dialogs, and actions that call the same library
functions as the CLI (the fake backend above the seam records what reached "Slurm")."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, Log

import nsml_hpc.sessions.actions
from nsml_hpc.catalog.sessions import get_session, list_sessions
from nsml_hpc.catalog.snapshots import lineage_of, snapshots_of
from nsml_hpc.sync.run import SyncReport
from tests.tui.conftest import TuiWorld, settle
from tests.tui.shipped import (
    CompareScreen,
    ConfirmDialog,
    ForkDialog,
    HelpScreen,
    MemoDialog,
    NsmlApp,
    SessionScreen,
    SessionsScreen,
    SessionTable,
    StatusLine,
)

Script = Callable[[Any, NsmlApp], Awaitable[None]]


def drive(app: NsmlApp, script: Script, size: tuple[int, int] = (120, 34)) -> None:
    async def run() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await script(pilot, app)

    asyncio.run(run())


def table_of(app: NsmlApp) -> SessionTable:
    return app.screen.query_one(SessionTable)


def shown(table: SessionTable) -> list[str]:
    return [row.name for line in range(table.line_count) if (row := table.row_at(line))]


def test_the_table_lists_sessions_newest_first_and_the_sync_ran(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        table = table_of(app)
        assert shown(table) == ["cifar/2", "cifar/1", "mnist/4", "mnist/3", "mnist/2", "mnist/1"]
        assert table.session_query.key_metric == "val_loss"
        assert world.syncs >= 1
        assert "synced 0 s ago" in str(app.screen.query_one(StatusLine).render())

    drive(world.app(), script)


def test_slash_filters_the_table_and_escape_clears_it(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        await pilot.press("slash")
        assert app.focused is app.screen.query_one("#filter", Input)
        await pilot.press(*"state:run", "enter")
        await pilot.pause(0.3)
        await settle(pilot)
        table = table_of(app)
        assert table.has_focus
        assert shown(table) == ["cifar/1", "mnist/2"]
        await pilot.press("escape")
        await settle(pilot)
        assert table.session_query.filter_text == ""
        assert len(shown(table)) == 6

    drive(world.app(), script)


def test_s_cycles_the_sort_column_and_a_header_click_sorts_by_it(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        table = table_of(app)
        await pilot.press("s")
        await settle(pilot)
        assert (table.session_query.sort, table.session_query.descending) == ("name", False)
        assert shown(table)[:2] == ["cifar/1", "cifar/2"]
        await pilot.press("S")
        await settle(pilot)
        assert shown(table)[0] == "mnist/4"
        # BEST is the 8th column: 2+1 + 28+1 + 8+1 + 22+1 + 6+1 + 10+1 + 11+1 = 94
        await pilot.click(SessionTable, offset=(95, 0))
        await settle(pilot)
        assert (table.session_query.sort, table.session_query.descending) == ("best", False)
        assert shown(table)[0] == "cifar/1"  # the lowest val_loss first
        assert shown(table)[-1] == "mnist/3"  # no metric yet: last

    drive(world.app(), script)


def test_g_groups_by_project_and_enter_on_a_header_collapses_it(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        table = table_of(app)
        await pilot.press("g")
        await settle(pilot)
        assert table.line_count == 8  # 2 headers + 6 sessions
        assert table.row_at(0) is None and table.row_at(1) is not None
        await pilot.press("enter")  # cursor on the "cifar" header
        await settle(pilot)
        assert table.line_count == 6
        assert shown(table) == ["mnist/4", "mnist/3", "mnist/2", "mnist/1"]

    drive(world.app(), script)


def test_enter_opens_the_session_with_its_spec_jobs_and_log(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        await pilot.press("down", "enter")  # cifar/1
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SessionScreen) and screen.session == "cifar/1"
        assert screen.detail is not None
        assert screen.detail["hyperparameters"] == {"arch": "resnet18", "lr": 0.1}
        assert [job["job_id"] for job in screen.detail["jobs"]] == ["104"]
        await pilot.press("3")
        log = screen.query_one(Log)
        for _ in range(100):  # the pane reads on its next poll tick
            await pilot.pause(0.05)
            if "epoch 39 val_loss" in "\n".join(log.lines):
                break
        assert "epoch 39 val_loss" in "\n".join(log.lines)
        await pilot.press("escape")
        assert isinstance(app.screen, SessionsScreen)

    drive(world.app(), script)


@pytest.mark.parametrize(
    "tabs",
    [[], ["1"], ["2"], ["3"], ["4"], ["2", "3"], ["3", "4", "2"]],
    ids=lambda tabs: "-".join(tabs) or "as-opened",
)
def test_escape_from_any_tab_of_the_session_screen_returns_to_the_table(
    world: TuiWorld, tabs: list[str]
) -> None:
    """Whatever tab is active, and whichever of its widgets has the focus (the metric picker,
    the followed log, the snapshot list), Escape closes the session screen: the sessions table
    is back, focused, its cursor still on the session (the tmux test's Enter, 2, 3, Escape)."""

    async def script(pilot: Any, app: NsmlApp) -> None:
        await pilot.press("down", "enter")  # cifar/1, RUNNING: its log grows while it is open
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SessionScreen) and screen.session == "cifar/1"
        for key in tabs:
            await pilot.press(key)
            await settle(pilot)
        if tabs and tabs[-1] == "3":
            log = screen.query_one(Log)
            for _ in range(100):  # the pane reads on its next poll tick
                await pilot.pause(0.05)
                if log.lines:
                    break
            assert log.lines and app.focused is log
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, SessionsScreen), app.screen_stack
        assert screen not in app.screen_stack
        table = table_of(app)
        assert app.focused is table
        row = table.row_at(table.cursor_line)
        assert row is not None and row.name == "cifar/1"

    drive(world.app(), script)


def test_stop_asks_first_and_then_calls_the_library(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        await pilot.press("down", "x")  # cifar/1, RUNNING, job 104
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await settle(pilot)
        assert world.backend.cancelled == []
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert world.backend.cancelled == ["104"]

    drive(world.app(), script)


def test_stopping_marked_sessions_reports_what_the_library_refused(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        await pilot.press("space", "space")  # cifar/2 (CANCELLED) and cifar/1 (RUNNING)
        assert table_of(app).marks == {"cifar/1", "cifar/2"}
        await pilot.press("x")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog) and "Stop 2 sessions?" in dialog.title_text
        await pilot.press("y")
        await settle(pilot)
        assert world.backend.cancelled == ["104"]
        messages = [notification.message for notification in app._notifications]
        assert any("cifar/2" in message and "already CANCELLED" in message for message in messages)

    drive(world.app(), script)


def test_the_tui_acts_through_the_same_workspace_operations_as_the_cli(
    world: TuiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stop and memo from the sessions screen are Workspace.stop and Workspace.set_memo, which
    call the feature functions the CLI's commands call (the CLI has no other way in:
    tests/pure/test_headless.py)."""
    calls: list[tuple[str, str]] = []

    def recording(method: str, feature: Any) -> None:
        original = getattr(feature, method)

        def record(*args: Any, **kwargs: Any) -> Any:
            calls.append((method, args[1]))
            return original(*args, **kwargs)

        monkeypatch.setattr(feature, method, record)

    recording("stop_session", nsml_hpc.sessions.actions)
    recording("set_memo", nsml_hpc.sessions.actions)

    async def script(pilot: Any, app: NsmlApp) -> None:
        await pilot.press("down", "x")  # cifar/1, RUNNING
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one(Input).value = "through the workspace"
        await pilot.press("enter")
        await settle(pilot)

    drive(world.app(), script)
    assert calls == [("stop_session", "cifar/1"), ("set_memo", "cifar/1")]
    assert world.backend.cancelled == ["104"]


def test_memo_edit_is_saved_in_the_catalog(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, MemoDialog)
        app.screen.query_one(Input).value = "vit is slow"
        await pilot.press("enter")
        await settle(pilot)
        assert get_session(world.workspace.catalog, "cifar/2").memo == "vit is slow"
        row = table_of(app).row_at(0)
        assert row is not None and row.memo == "vit is slow"

    drive(world.app(), script)


def test_fork_form_submits_a_child_from_a_snapshot_with_changed_values(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        await pilot.press("end", "enter", "4")  # mnist/1, snapshots tab
        await settle(pilot)
        await pilot.press("down", "f")  # ep20
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ForkDialog)
        await pilot.press(*"lr=0.3 epochs=5 seed=7")
        dialog.query_one("#gpus", Input).value = "1"
        await pilot.press("enter")
        await settle(pilot)
        child = get_session(world.workspace.catalog, "mnist/5")
        spec = json.loads(child.spec_json)
        assert spec["args"] == ["--lr", "0.3", "--epochs", "5", "--seed", "7"]
        assert spec["resources"]["gpus"] == 1
        assert "resume_from" not in spec
        assert child.memo == "fork of mnist/1:ep20"
        assert [Path(path).name for path in world.backend.submitted] == ["job.sbatch"]
        run_dir = Path(child.run_dir)
        assert (run_dir / "code" / "train.py").is_file()
        parent_dir = world.run_root / "alice" / "mnist" / "1"
        entry = json.loads((run_dir / "session.json").read_text())["fork"]
        assert (entry["session"], entry["snapshot"], entry["step"]) == ("mnist/1", "ep20", 20)
        assert Path(entry["snapshot_path"]) == parent_dir / "snapshots" / "ep20"
        assert entry["overrides"] == {"lr": "0.3", "epochs": "5", "seed": "7"}
        assert child.id is not None
        lineage = lineage_of(world.workspace.catalog, child.id)
        assert lineage is not None
        assert (lineage.parent_name, lineage.parent_tag) == ("mnist/1", "ep20")
        parent_rows = snapshots_of(world.workspace.catalog, [world.ids["mnist/1"]])
        assert {row.tag for row in parent_rows[world.ids["mnist/1"]] if row.forked_from} == {"ep20"}

    drive(world.app(), script)


def test_the_fork_form_starts_from_the_latest_snapshot_by_default(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        await pilot.press("end", "f")  # mnist/1 from the sessions table
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ForkDialog)
        assert dialog.snapshot_tags == ["ep10", "ep20", "best"]  # the damaged ep30 is not offered
        request = dialog.request()
        assert (request.parent, request.snapshot) == ("mnist/1", "best")

    drive(world.app(), script)


def test_a_session_without_snapshots_has_nothing_to_fork_from(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        await pilot.press("f")  # cifar/2: no snapshots
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ForkDialog)
        assert "no snapshot to fork from" in str(dialog.query_one("#error").render())
        assert dialog.query_one("#fork").disabled
        await pilot.press(*"lr=0.3", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ForkDialog)  # nothing submitted
        assert world.backend.submitted == []

    drive(world.app(), script)


def test_a_bad_fork_value_stays_in_the_form_with_its_error(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        await pilot.press("end", "f")
        await settle(pilot)
        await pilot.press(*"lr", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ForkDialog)
        assert "name=value" in str(app.screen.query_one("#error").render())
        assert world.backend.submitted == []

    drive(world.app(), script)


def test_pin_and_delete_of_a_snapshot_ask_first_and_go_through_the_catalog(
    world: TuiWorld,
) -> None:
    snapshots = world.run_root / "alice" / "mnist" / "1" / "snapshots"
    session_id = world.ids["mnist/1"]

    def rows() -> dict[str, Any]:
        return {
            row.tag: row for row in snapshots_of(world.workspace.catalog, [session_id])[session_id]
        }

    async def script(pilot: Any, app: NsmlApp) -> None:
        await pilot.press("end", "enter", "4")
        await settle(pilot)
        await pilot.press("p")  # ep10
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await settle(pilot)
        assert rows()["ep10"].pinned
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert (snapshots / "ep10").is_dir() and "ep10" in rows()  # pinned: refused
        messages = [notification.message for notification in app._notifications]
        assert any("ep10 is pinned" in message for message in messages)
        await pilot.press("down", "down", "d")  # best
        await pilot.pause()
        await pilot.press("n")
        await settle(pilot)
        assert (snapshots / "best").is_dir()
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert not (snapshots / "best").exists() and "best" not in rows()
        table = app.screen.query_one("#snapshot-table", DataTable)
        assert table.row_count == 3

    drive(world.app(), script)


def test_marked_sessions_open_in_compare(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        await pilot.press("c")
        assert not isinstance(app.screen, CompareScreen)  # needs two marks
        await pilot.press("end", "space", "up", "up", "space", "c")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        assert screen.sessions == ["mnist/1", "mnist/3"]
        assert screen.comparison is not None
        assert set(screen.comparison.differing) == {"amp", "lr"}

    drive(world.app(), script)


def test_an_unreachable_cluster_shows_cached_data_with_a_warning(world: TuiWorld) -> None:
    world.sync_report = SyncReport(
        queried=["local"], errors={"local": "sacct failed on local: Connection refused"}
    )

    async def script(pilot: Any, app: NsmlApp) -> None:
        status = app.screen.query_one(StatusLine)
        assert status.has_class("-unreachable")
        text = str(status.render())
        assert "cluster local unreachable — showing cached data" in text
        assert len(shown(table_of(app))) == 6  # the catalog is still shown
        world.sync_report = SyncReport(queried=["local"])
        app.request_sync()
        for _ in range(50):
            await pilot.pause(0.05)
            if not status.has_class("-unreachable"):
                break
        assert "synced" in str(status.render())

    drive(world.app(sync_interval=0.5), script)


def test_question_mark_lists_every_key_of_the_screen(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        await pilot.press("question_mark")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, HelpScreen)
        whats = {row[2] for row in screen.rows}
        assert {"Filter", "Sort", "Group", "Stop", "Fork", "Memo", "Compare", "Mark"} <= whats
        assert "Reverse sort" in whats  # shown in help even though not in the footer
        await pilot.press("escape")
        assert isinstance(app.screen, SessionsScreen)

    drive(world.app(), script)


def test_the_table_loads_only_the_rows_around_the_viewport(
    world: TuiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nsml_hpc.catalog.models import SessionRecord

    with world.workspace.catalog.session() as db:
        for number in range(1, 1501):
            db.add(
                SessionRecord(
                    name=f"big/{number}",
                    project="big",
                    number=number,
                    user="alice",
                    owner=world.workspace.catalog.user,
                    cluster="local",
                    state="COMPLETED",
                    run_dir=f"/runs/big/{number}",
                    spec_json="{}",
                    created_at=number,
                    updated_at=number,
                )
            )

    async def script(pilot: Any, app: NsmlApp) -> None:
        table = table_of(app)
        assert table.total == 1506
        assert len(table.rows) < 150
        await pilot.press("end")
        await settle(pilot)
        assert table.current_name == "big/1"
        assert len(table.rows) < 300

    drive(world.app(), script)


def test_r_syncs_now(world: TuiWorld) -> None:
    async def script(pilot: Any, app: NsmlApp) -> None:
        before = world.syncs
        await pilot.press("r")
        for _ in range(40):
            await pilot.pause(0.05)
            if world.syncs > before:
                break
        assert world.syncs > before
        assert len(list_sessions(world.workspace.catalog)) == 6

    drive(world.app(), script)
