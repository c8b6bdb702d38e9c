"""The TUI on a shared catalog: a USER column and a ``user:`` filter once the catalog holds
another user's sessions, names that say whose, and nothing from the catalog (memos, pending
reasons, hyperparameters, events) reaching the screen as a control sequence."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import update

from nsml_hpc.catalog.models import SessionRecord
from nsml_hpc.catalog.sessions import get_session
from tests.tui.conftest import TuiWorld, settle
from tests.tui.shipped import NsmlApp, SessionScreen
from tests.tui.test_tui_behaviour import drive, shown, table_of

RAW = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
HOSTILE_MEMO = "memo\x1b]0;PWNED\x07\u202eevil\nline"


def _screen_text(table: Any) -> list[str]:
    return [
        "".join(segment.text for segment in table.render_line(y))
        for y in range(min(table.line_count + 1, 10))
    ]


def test_a_shared_catalog_shows_a_user_column_filters_by_user_and_escapes_everything(
    world: TuiWorld,
) -> None:
    catalog = world.workspace.catalog
    mnist2 = get_session(catalog, "mnist/2")
    with catalog.session() as db:
        db.execute(
            update(SessionRecord)
            .where(SessionRecord.id == mnist2.id)  # type: ignore[arg-type]
            .values(owner="bob", memo=HOSTILE_MEMO, reason="re\x1b[5mason")
        )

    async def script(pilot: Any, app: NsmlApp) -> None:
        table = table_of(app)
        names = shown(table)
        me = catalog.user
        assert "bob/mnist/2" in names and f"{me}/mnist/1" in names
        lines = _screen_text(table)
        assert "USER" in lines[0]
        for line in lines:
            assert RAW.search(line) is None, repr(line)
        assert any("memo\\x1b" in line for line in lines), lines  # escaped, not acted on
        await pilot.press("slash")
        await pilot.press(*"user:bob")
        await pilot.press("enter")
        await settle(pilot)
        assert shown(table) == ["bob/mnist/2"]
        await pilot.press("escape")
        await settle(pilot)
        # the session screen of bob's session, addressed by its full name
        app.push_screen(SessionScreen("bob/mnist/2"))
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SessionScreen) and screen.detail is not None
        assert screen.detail["owner"] == "bob"
        rendered = str(screen.query_one("#title").render())
        assert RAW.search(rendered) is None, repr(rendered)

    drive(world.app(), script)
