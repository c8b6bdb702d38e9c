"""The session table: a virtual (Line API) table that only ever holds the rows on screen.

Rows (:class:`~nsml_hpc.sessions.views.SessionRow`, the row ``ps`` prints) come from
:meth:`~nsml_hpc.workspace.Workspace.session_page` in a worker: the table knows how many lines
it has (a COUNT, or per-project counts when grouped) and asks for the window around the
viewport as it scrolls. Ten thousand sessions cost one COUNT and one page of ~100 rows, not
ten thousand widgets. Which line holds what, when grouped, is :mod:`.layout`'s business.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.binding import Binding, BindingType
from textual.events import Click, Resize
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from nsml_hpc.formatting import printable, sorted_sessions
from nsml_hpc.job.direction import NO_OVERRIDES, Directions
from nsml_hpc.sessions.query import SessionQuery, SortColumn
from nsml_hpc.sessions.views import SessionRow
from nsml_hpc.slurm.timefmt import format_duration
from nsml_hpc.workspace import Workspace

from ..sessions.layout import GroupLayout, visible_offsets
from ..widgets.styling import metric_text, state_style

PAGE_MARGIN = 50  # rows fetched above and below the viewport


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    align: str = "left"  # or "right"
    sort: SortColumn | None = None


def layout_columns(
    width: int,
    key_metric: str | None,
    directions: Directions = NO_OVERRIDES,
    shared: bool = False,
) -> list[Column]:
    """Columns that fit ``width``: fixed ones first, the memo takes what is left; USER on a
    catalog that holds other users' sessions (``shared``)."""
    metric = key_metric or "metric"
    goal = directions.goal(metric)
    columns = [
        Column("mark", "", 2),
        Column("name", "NAME", 16, sort="name"),
        *([Column("user", "USER", 8)] if shared else []),
        Column("cluster", "CLUSTER", 8, sort="cluster"),
        Column("state", "STATE", 22, sort="state"),
        Column("gpus", "GPUS", 6, "right", sort="gpus"),  # 16x8, 128x8, "GPUS ▼"
        Column("elapsed", "ELAPSED", 10, "right", sort="elapsed"),
        Column("last", metric.upper(), 11, "right", sort="last"),
        Column("best", "BEST " + ("↓" if goal == "min" else "↑"), 10, "right", sort="best"),
    ]
    used = sum(column.width + 1 for column in columns)
    spare = width - used
    if spare > 12:
        grow = min(spare - 12, 12)
        columns[1] = replace(columns[1], width=columns[1].width + grow)
        spare -= grow
    if spare > 6:
        columns.append(Column("memo", "MEMO", spare - 1))
    return columns


def _cell(text: str, width: int, align: str) -> str:
    text = printable(text)  # what a job wrote never reaches the terminal as a control
    if len(text) > width:
        text = text[: max(width - 1, 0)] + "…" if width > 1 else text[:width]
    return text.rjust(width) if align == "right" else text.ljust(width)


class SessionTable(ScrollView, can_focus=True):
    """Sessions, one line each (or grouped under project headers), with a cursor and marks."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "session-table--header",
        "session-table--cursor",
        "session-table--group",
        "session-table--mark",
        "session-table--placeholder",
    }
    DEFAULT_CSS = """
    SessionTable {
        height: 1fr;
        scrollbar-gutter: stable;
    }
    SessionTable > .session-table--header { text-style: bold; background: $panel; }
    SessionTable > .session-table--cursor { background: $primary 25%; }
    SessionTable:focus > .session-table--cursor { background: $primary 45%; text-style: bold; }
    SessionTable > .session-table--group { text-style: bold; color: $secondary; }
    SessionTable > .session-table--mark { color: $warning; text-style: bold; }
    SessionTable > .session-table--placeholder { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end,G", "jump(-1)", "Last", show=False),
        Binding("enter", "open", "Open", show=True),
        Binding("space", "toggle_mark", "Mark", show=True),
    ]

    cursor_line: reactive[int] = reactive(0)

    @dataclass
    class Opened(Message):
        """Enter (or a second click) on a session line."""

        name: str

    @dataclass
    class Highlighted(Message):
        """The cursor moved to another session (None: a group header or nothing)."""

        name: str | None

    @dataclass
    class MarksChanged(Message):
        names: frozenset[str]

    @dataclass
    class SortRequested(Message):
        """A column header was clicked."""

        column: SortColumn

    @dataclass
    class Loaded(Message):
        """A worker fetched the line count and the rows around the viewport."""

        generation: int
        total: int
        layout: GroupLayout | None
        rows: dict[int, SessionRow]
        seconds: float

    @dataclass
    class PageLoaded(Message):
        generation: int
        rows: dict[int, SessionRow]

    def __init__(
        self,
        workspace: Workspace,
        clock: Callable[[], float],
        *,
        query: SessionQuery | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.workspace = workspace
        self.clock = clock
        self.session_query = query or SessionQuery()
        self.collapsed: frozenset[str] = frozenset()
        self.marks: set[str] = set()
        self.total = 0
        self.groups: GroupLayout | None = None
        self.rows: dict[int, SessionRow] = {}
        self.loaded = False
        self.last_load_seconds = 0.0
        self._generation = 0
        self._rows_generation = -1
        self._fetching = False

    # --- data -------------------------------------------------------------------------------

    def set_query(self, query: SessionQuery) -> None:
        """Show the sessions of ``query`` (new filter, sort or grouping); cursor to the top."""
        self.session_query = query
        self.rows = {}
        self.cursor_line = 0
        self.scroll_to(y=0, animate=False)
        self.reload()

    def reload(self) -> None:
        """Fetch the count and the visible rows again (after a sync); rows stay until then."""
        self._generation += 1
        self._load(self._generation, self.session_query, self.collapsed, self._visible_lines())

    @work(thread=True, exclusive=True, group="session-table-load", name="session-table-load")
    def _load(
        self,
        generation: int,
        query: SessionQuery,
        collapsed: frozenset[str],
        lines: range,
    ) -> None:
        started = time.perf_counter()
        layout: GroupLayout | None = None
        if query.group_by_project:
            layout = GroupLayout(tuple(self.workspace.project_counts(query)), collapsed)
            total = layout.total_lines
        else:
            total = self.workspace.count_sessions(query)
        rows = self._fetch(query, layout, lines)
        if not get_current_worker().is_cancelled:
            self.post_message(
                self.Loaded(generation, total, layout, rows, time.perf_counter() - started)
            )

    def _fetch(
        self, query: SessionQuery, layout: GroupLayout | None, lines: range
    ) -> dict[int, SessionRow]:
        """Rows for the session offsets on ``lines``, one query per contiguous run."""
        offsets = sorted(set(visible_offsets(layout, list(lines))))
        rows: dict[int, SessionRow] = {}
        start = 0
        while start < len(offsets):
            end = start
            while end + 1 < len(offsets) and offsets[end + 1] == offsets[end] + 1:
                end += 1
            first, count = offsets[start], offsets[end] - offsets[start] + 1
            page = self.workspace.session_page(query, first, count, now=self.clock())
            rows.update({first + index: row for index, row in enumerate(page)})
            start = end + 1
        return rows

    @work(thread=True, exclusive=True, group="session-table-page", name="session-table-page")
    def _load_page(self, generation: int, query: SessionQuery, layout: GroupLayout | None) -> None:
        rows = self._fetch(query, layout, self._visible_lines())
        if not get_current_worker().is_cancelled:
            self.post_message(self.PageLoaded(generation, rows))

    def on_session_table_loaded(self, message: Loaded) -> None:
        if message.generation != self._generation:
            return
        self.total, self.groups = message.total, message.layout
        self.rows = dict(message.rows)
        self._rows_generation = message.generation
        self.loaded = True
        self.last_load_seconds = message.seconds
        self._update_virtual_size()
        if self.cursor_line >= self.line_count:
            self.cursor_line = max(self.line_count - 1, 0)
        self.refresh()
        self.post_message(self.Highlighted(self.current_name))
        self._request_missing()

    def on_session_table_page_loaded(self, message: PageLoaded) -> None:
        message.stop()
        self._fetching = False
        if message.generation != self._generation:
            return
        self.rows.update(message.rows)
        self.refresh()
        self.post_message(self.Highlighted(self.current_name))

    def _request_missing(self) -> None:
        """Fetch rows scrolled into view that are not loaded yet (one worker at a time)."""
        if not self.loaded or self._fetching:
            return
        lines = self._visible_lines()
        wanted = visible_offsets(self.groups, list(lines))
        if any(offset not in self.rows for offset in wanted):
            self._fetching = True
            self._load_page(self._generation, self.session_query, self.groups)

    def _visible_lines(self) -> range:
        top = int(self.scroll_offset.y)
        height = max(self.scrollable_content_region.height, 24)
        return range(max(top - PAGE_MARGIN, 0), top + height + PAGE_MARGIN)

    # --- geometry ---------------------------------------------------------------------------

    @property
    def line_count(self) -> int:
        return self.total

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, self.line_count + 1)

    def on_resize(self, _event: Resize) -> None:
        self._update_virtual_size()

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        """Running sessions' elapsed time advances every second (only they are redrawn)."""
        top = int(self.scroll_offset.y)
        height = self.scrollable_content_region.height
        for y in range(1, height):
            row = self.row_at(top + y - 1)
            if row is not None and row.state == "RUNNING":
                self.refresh_line(top + y)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._request_missing()

    def watch_cursor_line(self, old: int, new: int) -> None:
        self.refresh()
        self._scroll_into_view(new)
        self.post_message(self.Highlighted(self.current_name))

    def _scroll_into_view(self, line: int) -> None:
        height = self.scrollable_content_region.height - 1  # the header line
        top = int(self.scroll_offset.y)
        if line < top:
            self.scroll_to(y=line, animate=False)
        elif height > 0 and line >= top + height:
            self.scroll_to(y=line - height + 1, animate=False)

    # --- what is where ----------------------------------------------------------------------

    def row_at(self, line: int) -> SessionRow | None:
        if self.groups is None:
            return self.rows.get(line)
        slot = self.groups.slot(line)
        return self.rows.get(slot.offset) if slot and slot.kind == "session" else None

    @property
    def shared(self) -> bool:
        """The loaded rows are named ``owner/project/N``: the catalog holds other users'."""
        return any(row.name.count("/") == 2 for row in self.rows.values())

    @property
    def current(self) -> SessionRow | None:
        return self.row_at(self.cursor_line)

    @property
    def current_name(self) -> str | None:
        row = self.current
        return row.name if row else None

    def targets(self) -> list[str]:
        """What an action applies to: the marked sessions, else the one under the cursor."""
        if self.marks:
            return sorted_sessions(self.marks)  # proj/2 before proj/10
        name = self.current_name
        return [name] if name else []

    # --- actions ----------------------------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        if self.line_count:
            self.cursor_line = min(max(self.cursor_line + delta, 0), self.line_count - 1)

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(self.scrollable_content_region.height - 2, 1))

    def action_jump(self, line: int) -> None:
        if self.line_count:
            self.cursor_line = line if line >= 0 else self.line_count - 1

    def action_open(self) -> None:
        if self.groups is not None:
            slot = self.groups.slot(self.cursor_line)
            if slot is not None and slot.kind == "header":
                self.toggle_group(slot.project)
                return
        name = self.current_name
        if name:
            self.post_message(self.Opened(name))

    def toggle_group(self, project: str) -> None:
        collapsed = set(self.collapsed)
        collapsed.symmetric_difference_update({project})
        self.collapsed = frozenset(collapsed)
        self.reload()

    def action_toggle_mark(self) -> None:
        name = self.current_name
        if name is None:
            return
        if name in self.marks:
            self.marks.discard(name)
        else:
            self.marks.add(name)
        self.refresh()
        self.post_message(self.MarksChanged(frozenset(self.marks)))
        self.action_cursor(1)

    def set_marks(self, names: set[str]) -> None:
        self.marks = set(names)
        self.refresh()
        self.post_message(self.MarksChanged(frozenset(self.marks)))

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            x = 0
            query = self.session_query
            width = self.scrollable_content_region.width
            for column in layout_columns(width, query.key_metric, query.directions, self.shared):
                if x <= offset.x < x + column.width + 1 and column.sort is not None:
                    self.post_message(self.SortRequested(column.sort))
                    return
                x += column.width + 1
            return
        line = int(self.scroll_offset.y) + offset.y - 1
        if 0 <= line < self.line_count:
            if line == self.cursor_line or event.chain >= 2:
                self.action_open()
            else:
                self.cursor_line = line

    # --- rendering --------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        query = self.session_query
        columns = layout_columns(width, query.key_metric, query.directions, self.shared)
        if y == 0:
            return self._header(columns, width)
        line = int(self.scroll_offset.y) + y - 1
        if line >= self.line_count:
            if not self.loaded or self.line_count:
                return Strip.blank(width, self.rich_style)
            style = self.get_component_rich_style("session-table--placeholder")
            text = "  no sessions match" if self.session_query.filter_text else "  no sessions yet"
            return (
                Strip([Segment(text.ljust(width), style)], width) if y == 1 else Strip.blank(width)
            )
        base = self.rich_style
        if line == self.cursor_line:
            base = base + self.get_component_rich_style("session-table--cursor")
        if self.groups is not None:
            slot = self.groups.slot(line)
            if slot is not None and slot.kind == "header":
                return self._group_header(slot.project, slot.count, width, base)
        row = self.row_at(line)
        if row is None:
            self.call_later(self._request_missing)
            style = base + self.get_component_rich_style("session-table--placeholder")
            return Strip([Segment("  …".ljust(width), style)], width)
        return self._row(row, columns, width, base)

    def _header(self, columns: list[Column], width: int) -> Strip:
        style = self.rich_style + self.get_component_rich_style("session-table--header")
        segments = []
        for column in columns:
            label = column.label
            if column.sort is not None and column.sort == self.session_query.sort:
                label += " ▼" if self.session_query.descending else " ▲"
            segments.append(Segment(_cell(label, column.width, column.align) + " ", style))
        return Strip(segments).adjust_cell_length(width, style)

    def _group_header(self, project: str, count: int, width: int, base: Style) -> Strip:
        style = base + self.get_component_rich_style("session-table--group")
        arrow = "▸" if project in self.collapsed else "▾"
        text = f"{arrow} {project}  ({count} session{'s' if count != 1 else ''})"
        return Strip([Segment(text, style)]).adjust_cell_length(width, base)

    def _row(self, row: SessionRow, columns: list[Column], width: int, base: Style) -> Strip:
        segments: list[Segment] = []
        for column in columns:
            style = base
            if column.key == "mark":
                text = "●" if row.name in self.marks else " "
                style = base + self.get_component_rich_style("session-table--mark")
            elif column.key == "name":
                text = row.name
            elif column.key == "user":
                text = row.owner
            elif column.key == "cluster":
                text = row.cluster
            elif column.key == "state":
                text = row.state_text
                style = base + Style.parse(state_style(row.state) or "none")
            elif column.key == "gpus":
                text = row.gpus_text
            elif column.key == "elapsed":
                text = format_duration(row.elapsed_at(self.clock()))
            elif column.key == "last":
                text = metric_text(row.key_last)
            elif column.key == "best":
                text = metric_text(row.key_best)
            else:
                text = row.memo
            segments.append(Segment(_cell(text, column.width, column.align), style))
            segments.append(Segment(" ", base))
        return Strip(segments).adjust_cell_length(width, base)
