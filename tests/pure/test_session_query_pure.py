"""The pure parts of the session table's query: the filter syntax and sort directions (the
grouped layout of the table's lines is the TUI's: tests/tui/test_table_layout.py)."""

from __future__ import annotations

from nsml_hpc.sessions.query import FilterTerm, SessionQuery, default_descending, parse_filter


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


def test_default_directions() -> None:
    assert default_descending("created", None)
    assert not default_descending("name", None)
    assert not default_descending("best", "val_loss")  # lowest loss first
    assert default_descending("best", "val_acc")  # highest accuracy first


def test_sorted_by_starts_a_column_its_natural_way_and_a_second_click_flips_it() -> None:
    query = SessionQuery(key_metric="val_loss")
    by_best = query.sorted_by("best")
    assert (by_best.sort, by_best.descending) == ("best", False)  # lowest loss first
    assert by_best.sorted_by("best", toggle=True).descending
    assert not query.sorted_by("created", toggle=True).descending  # newest first, flipped
    assert query.sorted_by("gpus", toggle=True).descending  # a new column: its own way
