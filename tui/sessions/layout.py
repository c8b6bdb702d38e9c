"""Which screen line of the session table holds what: a project's header or the n-th session
of the query's order. Plain data, kept beside the widget that draws it
(:mod:`nsml_hpc.tui.sessions.table`); the query module only counts and fetches."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class RowSlot:
    """What one line of a grouped table holds: a project header or the n-th session."""

    kind: Literal["header", "session"]
    project: str
    count: int = 0  # sessions in the group (headers)
    offset: int = 0  # position of the session in the query's order (sessions)


@dataclass(frozen=True)
class GroupLayout:
    """Maps table lines to group headers and sessions when grouped by project.

    Every group has a header line; a collapsed group shows only its header. ``offset`` of a
    session is its position in the SQL order (project first), so a page query fetches it.
    """

    groups: tuple[tuple[str, int], ...]
    collapsed: frozenset[str] = frozenset()
    _starts: list[int] = field(default_factory=list, init=False, repr=False, compare=False)
    _offsets: list[int] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        line = offset = 0
        for project, count in self.groups:
            self._starts.append(line)
            self._offsets.append(offset)
            line += 1 + (0 if project in self.collapsed else count)
            offset += count
        self._starts.append(line)

    @property
    def total_lines(self) -> int:
        return self._starts[-1] if self._starts else 0

    def slot(self, line: int) -> RowSlot | None:
        if line < 0 or line >= self.total_lines:
            return None
        index = bisect.bisect_right(self._starts, line) - 1
        project, count = self.groups[index]
        within = line - self._starts[index]
        if within == 0:
            return RowSlot("header", project, count=count)
        return RowSlot("session", project, offset=self._offsets[index] + within - 1)

    def header_line(self, project: str) -> int | None:
        for index, (name, _count) in enumerate(self.groups):
            if name == project:
                return self._starts[index]
        return None


def visible_offsets(layout: GroupLayout | None, lines: Sequence[int]) -> list[int]:
    """Session offsets shown on ``lines`` (ungrouped: the line is the offset)."""
    if layout is None:
        return [line for line in lines if line >= 0]
    offsets = []
    for line in lines:
        slot = layout.slot(line)
        if slot is not None and slot.kind == "session":
            offsets.append(slot.offset)
    return offsets
