"""The sessions screen: every session in a live table; filter, sort, group, mark; open one,
compare marked ones, stop, fork, edit a memo. Keys follow htop/k9s habits (``/`` filters,
``?`` lists every key)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from nsml_hpc.errors import NsmlError
from nsml_hpc.sessions.query import SORT_COLUMNS, SessionQuery, SortColumn
from nsml_hpc.snapshots.fork import ForkRequest

from ..app import nsml_app
from ..dialogs.confirm import ConfirmDialog
from ..dialogs.fork import ForkDialog
from ..dialogs.memo import MemoDialog
from ..sessions.table import SessionTable
from ..widgets.status_line import StatusLine

FILTER_DEBOUNCE = 0.15


class SessionsScreen(Screen[None]):
    CSS_PATH = "sessions.tcss"
    TITLE = "sessions"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear", "Clear", show=False),
        Binding("s", "sort_next", "Sort"),
        Binding("S", "sort_reverse", "Reverse sort", show=False),
        Binding("g", "group", "Group"),
        Binding("m", "next_metric", "Metric"),
        Binding("a", "mark_all", "Mark all", show=False),
        Binding("c", "compare", "Compare"),
        Binding("x", "stop", "Stop"),
        Binding("f", "fork", "Fork"),
        Binding("e", "memo", "Memo"),
    ]

    @dataclass
    class MetricsLoaded(Message):
        names: list[str]

    @dataclass
    class ActionDone(Message):
        """A stop/fork/memo worker finished: what to tell the user."""

        text: str
        errors: list[str]

    @dataclass
    class AllMatching(Message):
        names: list[str]

    def __init__(self) -> None:
        super().__init__()
        self.metric_names: list[str] = []
        self._filter_timer: Timer | None = None
        self._started = False

    def compose(self) -> ComposeResult:
        app = nsml_app(self)
        yield Static("", id="title", classes="title-bar")
        yield SessionTable(app.workspace, app.clock, id="sessions")
        yield Input(
            placeholder="filter: text  state:running,pending  project:mnist  -state:completed",
            id="filter",
            classes="hidden",
        )
        yield StatusLine()
        yield Footer()

    @property
    def table(self) -> SessionTable:
        return self.query_one(SessionTable)

    def on_mount(self) -> None:
        self.watch(self.app, "sync_status", self._on_sync, init=False)
        self._load_metric_names(first=True)
        self.table.focus()
        self._update_title()

    # --- data -------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="sessions-metrics", name="metric-names")
    def _load_metric_names(self, first: bool = False) -> None:
        names = nsml_app(self).workspace.metric_names()
        self.post_message(self.MetricsLoaded(names))

    def on_sessions_screen_metrics_loaded(self, message: MetricsLoaded) -> None:
        self.metric_names = message.names
        table = self.table
        workspace = nsml_app(self).workspace
        if not self._started:
            self._started = True
            key = workspace.key_metric(message.names)
            sort: SortColumn = "created"
            directions = workspace.settings.metric_directions
            table.set_query(
                replace(table.session_query, key_metric=key, sort=sort, directions=directions)
            )
        elif table.session_query.key_metric is None and message.names:
            table.set_query(
                replace(table.session_query, key_metric=workspace.key_metric(message.names))
            )
        self._update_title()

    def _on_sync(self, _status: object) -> None:
        if self._started:
            self.table.reload()
        self._load_metric_names()

    @on(SessionTable.Loaded)
    def _after_load(self, message: SessionTable.Loaded) -> None:
        self._update_title()

    def _update_title(self) -> None:
        if not self.is_mounted:
            return
        table = self.table
        query = table.session_query
        count = sum(c for _, c in table.groups.groups) if table.groups else table.total
        parts = [f"nsml-hpc · {count:,} session{'s' if count != 1 else ''}"]
        arrow = "▼" if query.descending else "▲"
        parts.append(f"sort {query.sort} {arrow}")
        if query.group_by_project:
            parts.append("grouped by project")
        if query.key_metric:
            parts.append(f"key metric {query.key_metric}")
        if query.filter_text:
            parts.append(f"filter “{query.filter_text}”")
        if table.marks:
            parts.append(f"{len(table.marks)} marked")
        self.query_one("#title", Static).update("  ·  ".join(parts))

    # --- table events -----------------------------------------------------------------------

    def on_session_table_opened(self, message: SessionTable.Opened) -> None:
        from ..session.screen import SessionScreen

        self.app.push_screen(SessionScreen(message.name))

    def on_session_table_marks_changed(self, _message: SessionTable.MarksChanged) -> None:
        self._update_title()

    def on_session_table_sort_requested(self, message: SessionTable.SortRequested) -> None:
        self._sort_by(message.column, toggle=True)

    # --- filter -----------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("hidden")
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        value = event.value
        self._filter_timer = self.set_timer(FILTER_DEBOUNCE, lambda: self._apply_filter(value))

    def _apply_filter(self, text: str) -> None:
        table = self.table
        if text != table.session_query.filter_text:
            table.set_query(replace(table.session_query, filter_text=text))
            self._update_title()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self._apply_filter(event.value)
        box = self.query_one("#filter", Input)
        if not event.value:
            box.add_class("hidden")
        self.table.focus()

    def action_clear(self) -> None:
        box = self.query_one("#filter", Input)
        table = self.table
        if box.has_focus:
            box.value = ""
            self._apply_filter("")
            box.add_class("hidden")
            table.focus()
        elif table.marks:
            table.set_marks(set())
        elif table.session_query.filter_text:
            box.value = ""
            box.add_class("hidden")
            self._apply_filter("")

    # --- sort, group, metric, marks ---------------------------------------------------------

    def _sort_by(self, column: SortColumn, *, toggle: bool = False) -> None:
        self.table.set_query(self.table.session_query.sorted_by(column, toggle=toggle))
        self._update_title()

    def action_sort_next(self) -> None:
        current = SORT_COLUMNS.index(self.table.session_query.sort)
        self._sort_by(SORT_COLUMNS[(current + 1) % len(SORT_COLUMNS)])

    def action_sort_reverse(self) -> None:
        query = self.table.session_query
        self.table.set_query(replace(query, descending=not query.descending))
        self._update_title()

    def action_group(self) -> None:
        query = self.table.session_query
        self.table.set_query(replace(query, group_by_project=not query.group_by_project))
        self._update_title()

    def action_next_metric(self) -> None:
        if not self.metric_names:
            self.notify("no metrics reported yet", severity="warning")
            return
        query = self.table.session_query
        names = self.metric_names
        index = names.index(query.key_metric) + 1 if query.key_metric in names else 0
        self.table.set_query(replace(query, key_metric=names[index % len(names)]))
        self._update_title()

    def action_mark_all(self) -> None:
        self._all_matching(self.table.session_query)

    @work(thread=True, exclusive=True, group="sessions-mark", name="mark-all")
    def _all_matching(self, query: SessionQuery) -> None:
        self.post_message(self.AllMatching(nsml_app(self).workspace.matching_names(query)))

    def on_sessions_screen_all_matching(self, message: AllMatching) -> None:
        table = self.table
        table.set_marks(set() if set(message.names) <= table.marks else set(message.names))
        self._update_title()

    # --- actions ----------------------------------------------------------------------------

    def action_compare(self) -> None:
        from ..compare.screen import CompareScreen

        names = self.table.targets()
        if len(names) < 2:
            self.notify("mark two or more sessions (space), then press c", severity="warning")
            return
        self.app.push_screen(CompareScreen(names))

    def action_stop(self) -> None:
        names = self.table.targets()
        if not names:
            return
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        dialog = ConfirmDialog(
            f"Stop {len(names)} session{'s' if len(names) != 1 else ''}?",
            f"{shown}\n\nSlurm cancels the job (scancel); the run directory stays.",
            confirm="Stop",
        )

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self._stop(names)

        self.app.push_screen(dialog, done)

    @work(thread=True, exclusive=True, group="sessions-stop", name="stop")
    def _stop(self, names: list[str]) -> None:
        workspace = nsml_app(self).workspace
        stopped: list[str] = []
        errors: list[str] = []
        for name in names:
            try:
                jobs = workspace.stop(name)
                stopped.append(f"{name} (job {', '.join(jobs)})")
            except NsmlError as exc:
                errors.append(f"{name}: {exc}")
        text = f"cancel requested for {', '.join(stopped)}" if stopped else ""
        self.post_message(self.ActionDone(text, errors))

    def action_fork(self) -> None:
        name = self.table.current_name
        if name is None:
            return

        def done(request: ForkRequest | None) -> None:
            if request is not None:
                self._fork(name, request)

        self.app.push_screen(ForkDialog(name), done)

    @work(thread=True, exclusive=True, group="sessions-fork", name="fork")
    def _fork(self, name: str, request: ForkRequest) -> None:
        try:
            forked = nsml_app(self).workspace.fork(request)
        except NsmlError as exc:
            self.post_message(self.ActionDone("", [f"fork of {name}: {exc}"]))
            return
        child = forked.submitted
        assert child is not None
        text = f"forked {name}:{forked.tag} → {child.name} (job {child.job_id})"
        self.post_message(self.ActionDone(text, []))

    def action_memo(self) -> None:
        row = self.table.current
        if row is None:
            return
        name = row.name

        def done(memo: str | None) -> None:
            if memo is not None:
                self._save_memo(name, memo)

        self.app.push_screen(MemoDialog(name, row.memo), done)

    @work(thread=True, exclusive=True, group="sessions-memo", name="memo")
    def _save_memo(self, name: str, memo: str) -> None:
        try:
            nsml_app(self).workspace.set_memo(name, memo)
        except NsmlError as exc:
            self.post_message(self.ActionDone("", [f"memo of {name}: {exc}"]))
            return
        self.post_message(self.ActionDone(f"memo of {name} saved", []))

    def on_sessions_screen_action_done(self, message: ActionDone) -> None:
        if message.text:
            self.notify(message.text, timeout=6)
        for error in message.errors:
            self.notify(error, severity="error", timeout=10)
        self.table.reload()
        nsml_app(self).request_sync()
