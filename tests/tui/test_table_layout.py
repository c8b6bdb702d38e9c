"""Which line of the session table holds what when grouped by project (pure data, kept beside
the widget that draws it)."""

from __future__ import annotations

from tests.tui.shipped import GroupLayout, RowSlot, visible_offsets


def test_group_layout_maps_lines_to_headers_and_session_offsets() -> None:
    layout = GroupLayout((("cifar", 2), ("mnist", 3)))
    assert layout.total_lines == 7
    assert layout.slot(0) == RowSlot("header", "cifar", count=2)
    assert layout.slot(2) == RowSlot("session", "cifar", offset=1)
    assert layout.slot(3) == RowSlot("header", "mnist", count=3)
    assert layout.slot(6) == RowSlot("session", "mnist", offset=4)
    assert layout.slot(7) is None and layout.slot(-1) is None
    assert layout.header_line("mnist") == 3


def test_a_collapsed_group_shows_only_its_header_and_keeps_later_offsets() -> None:
    layout = GroupLayout((("cifar", 2), ("mnist", 3)), frozenset({"cifar"}))
    assert layout.total_lines == 5
    assert layout.slot(1) == RowSlot("header", "mnist", count=3)
    assert layout.slot(2) == RowSlot("session", "mnist", offset=2)
    assert visible_offsets(layout, range(5)) == [2, 3, 4]
    assert visible_offsets(None, [0, 1, 2]) == [0, 1, 2]
