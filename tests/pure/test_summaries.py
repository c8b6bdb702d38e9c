"""Folding metric points into per-metric and per-block summaries (pure part)."""

from __future__ import annotations

from collections.abc import Sequence

from nsml_hpc.catalog.summaries import BLOCK_LINES, Summary, summarize_points
from nsml_hpc.runfiles.scrape import MetricPointRow


def _points(
    values: Sequence[float | None], name: str = "loss", first_line: int = 0
) -> list[MetricPointRow]:
    return [(1, first_line + i, first_line + i, None, name, v) for i, v in enumerate(values)]


def test_totals_hold_count_last_and_extremes_with_their_steps() -> None:
    totals, _ = summarize_points(_points([3.0, 1.0, None, 2.0, 5.0, None]))
    loss = totals["loss"]
    assert (loss.points, loss.last_step, loss.last_value) == (6, 5, None)
    assert (loss.min_value, loss.min_step, loss.max_value, loss.max_step) == (1.0, 1, 5.0, 4)


def test_blocks_split_on_line_boundaries() -> None:
    values = [float(i) for i in range(BLOCK_LINES + 10)]
    _, blocks = summarize_points(_points(values))
    assert sorted(blocks) == [("loss", 0), ("loss", 1)]
    assert blocks[("loss", 0)].max_value == BLOCK_LINES - 1
    assert blocks[("loss", 1)].points == 10


def test_merging_two_batches_equals_one_batch() -> None:
    values = [((i * 7919) % 113) / 10 for i in range(2000)]
    whole, _ = summarize_points(_points(values))
    first, _ = summarize_points(_points(values[:700]))
    second, _ = summarize_points(_points(values[700:], first_line=700))
    merged = Summary()
    merged.merge(first["loss"])
    merged.merge(second["loss"])
    assert merged == whole["loss"]


def test_the_summaries_folded_while_parsing_equal_those_computed_afterwards() -> None:
    import json

    from nsml_hpc.runfiles.scrape import parse_metric_lines

    lines = [
        json.dumps({"step": step, "loss": 1.0 / (step + 1), "acc": (step * 7) % 11, "x": "text"})
        for step in range(1500)
    ]
    lines[40] = '{"step": 40, "loss": NaN}'
    batch = parse_metric_lines(("\n".join(lines) + "\n").encode(), 700, session_id=3)
    totals, blocks = summarize_points(batch.points)
    assert batch.blocks == blocks
    assert totals["loss"].points == 1500
