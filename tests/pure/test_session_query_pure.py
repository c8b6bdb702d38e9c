"""The pure parts of the session table's query: the filter syntax and the grouped layout."""

from __future__ import annotations

from nsml_hpc.sessions.query import (
    FilterTerm,
    GroupLayout,
    RowSlot,
    default_descending,
    parse_filter,
    visible_offsets,
)


def test_filter_words_fields_negation_and_quotes() -> None:
    terms = parse_filter('mnist state:run,pend -state:completed !memo:bad "two words" memo:')
    assert terms == [
        FilterTerm(None, ("mnist",)),
        FilterTerm("state", ("run", "pend")),
        FilterTerm("state", ("completed",), negated=True),
        FilterTerm("memo", ("bad",), negated=True),
        FilterTerm(None, ("two words",)),
    ]


def test_an_unknown_key_is_plain_text_and_a_half_typed_quote_does_not_raise() -> None:
    assert parse_filter("lr:0.1") == [FilterTerm(None, ("lr:0.1",))]
    assert parse_filter('"unfinished') == [FilterTerm(None, ("unfinished",))]
    assert parse_filter("   ") == []
    assert parse_filter("-") == [FilterTerm(None, ("-",))]


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


def test_default_directions() -> None:
    assert default_descending("created", None)
    assert not default_descending("name", None)
    assert not default_descending("best", "val_loss")  # lowest loss first
    assert default_descending("best", "val_acc")  # highest accuracy first
