"""Summaries of metric points, as pure data: per metric and per block of lines
(:func:`summarize_points`, made where the points are parsed and for older catalogs). The
catalog stores them (:mod:`nsml_hpc.catalog.summaries`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

_PointRow = tuple[int, int, int | None, float | None, str, float | None]

BLOCK_SHIFT = 9
BLOCK_LINES = 1 << BLOCK_SHIFT  # metrics.jsonl lines per stored block (512)


@dataclass
class Summary:
    """What one session's points say about one metric (also the row, as plain data)."""

    points: int = 0
    last_line: int = -1
    last_step: int | None = None
    last_value: float | None = None
    min_value: float | None = None
    min_step: int | None = None
    max_value: float | None = None
    max_step: int | None = None

    def fold(self, line: int, step: int | None, value: float | None) -> None:
        """Add one point; points must come in line order."""
        self.points += 1
        if line >= self.last_line:
            self.last_line, self.last_step, self.last_value = line, step, value
        if value is None:
            return
        if self.min_value is None or value < self.min_value:
            self.min_value, self.min_step = value, step
        if self.max_value is None or value > self.max_value:
            self.max_value, self.max_step = value, step

    def merge(self, later: Summary) -> None:
        """Fold in the summary of points that came after these."""
        self.points += later.points
        if later.last_line >= self.last_line:
            self.last_line, self.last_step = later.last_line, later.last_step
            self.last_value = later.last_value
        if later.min_value is not None and (
            self.min_value is None or later.min_value < self.min_value
        ):
            self.min_value, self.min_step = later.min_value, later.min_step
        if later.max_value is not None and (
            self.max_value is None or later.max_value > self.max_value
        ):
            self.max_value, self.max_step = later.max_value, later.max_step


SUMMARY_FIELDS = tuple(field.name for field in fields(Summary))


def summarize_points(
    points: Iterable[_PointRow],
) -> tuple[dict[str, Summary], dict[tuple[str, int], Summary]]:
    """Per metric and per (metric, block of ``BLOCK_LINES`` lines) summaries of a batch of
    ``POINT_COLUMNS`` tuples, in one pass (pure; points in line order).

    Each point is folded into its block only; a metric's total is the merge of its blocks.
    """
    blocks: dict[tuple[str, int], Summary] = {}
    current: dict[str, tuple[int, Summary]] = {}
    shift = BLOCK_SHIFT
    for _session, line, step, _time, name, value in points:
        index = line >> shift
        entry = current.get(name)
        if entry is None or entry[0] != index:
            key = (name, index)
            block = blocks.get(key)
            if block is None:
                block = blocks[key] = Summary()
            current[name] = (index, block)
        else:
            block = entry[1]
        block.points += 1
        block.last_line, block.last_step, block.last_value = line, step, value
        if value is None:
            continue
        low = block.min_value
        if low is None or value < low:
            block.min_value, block.min_step = value, step
        high = block.max_value
        if high is None or value > high:
            block.max_value, block.max_step = value, step
    return totals_of(blocks), blocks


def totals_of(blocks: dict[tuple[str, int], Summary]) -> dict[str, Summary]:
    """Each metric's summary: the merge of its blocks in line order."""
    totals: dict[str, Summary] = {}
    for (name, _index), block in sorted(blocks.items(), key=lambda item: item[1].last_line):
        totals.setdefault(name, Summary()).merge(block)
    return totals
