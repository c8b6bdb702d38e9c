"""One session: overview (spec, hyperparameters, jobs, history, events), live metric plots,
the followed Slurm output, and the snapshot list, with stop / fork / memo / pin / delete."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, SelectionList, Static, TabbedContent, TabPane
from textual.widgets.selection_list import Selection

from nsml_hpc.errors import NsmlError
from nsml_hpc.formatting import printable_tree
from nsml_hpc.snapshots.fork import ForkRequest

from ..app import nsml_app
from ..dialogs.confirm import ConfirmDialog
from ..dialogs.fork import ForkDialog
from ..dialogs.hparams import HParamChanges, HParamDialog
from ..dialogs.memo import MemoDialog
from ..session.logs import LogPane
from ..session.overview import overview, title_line
from ..session.snapshots import SnapshotTable
from ..widgets.metric_plot import MetricPlot, PlotCurve
from ..widgets.status_line import StatusLine

TABS = ("overview", "metrics", "logs", "snapshots")


class SessionScreen(Screen[None]):
    CSS_PATH = "session.tcss"
    TITLE = "session"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("1", "tab('overview')", "Overview", show=False),
        Binding("2", "tab('metrics')", "Metrics", show=False),
        Binding("3", "tab('logs')", "Logs", show=False),
        Binding("4", "tab('snapshots')", "Snapshots", show=False),
        Binding("x", "stop", "Stop"),
        Binding("f", "fork", "Fork"),
        Binding("e", "memo", "Memo"),
        Binding("h", "hparams", "Set hyperparameters", show=False),
        Binding("p", "pin", "Pin snapshot"),
        Binding("d", "delete_snapshot", "Delete snapshot"),
        Binding("F", "follow", "Follow log", show=False),
    ]

    @dataclass
    class DetailLoaded(Message):
        detail: dict[str, Any] | None
        metrics: list[str]
        error: str | None = None

    @dataclass
    class CurvesLoaded(Message):
        names: list[str]  # the metrics asked for (a result for an older pick is dropped)
        curves: list[tuple[str, PlotCurve]]
        marks: list[float] = field(default_factory=list)  # steps of hyperparameter changes

    @dataclass
    class ActionDone(Message):
        text: str
        errors: list[str]

    def __init__(self, session: str) -> None:
        super().__init__()
        self.session = session
        self.detail: dict[str, Any] | None = None
        self.metrics: list[str] = []
        self._picked: set[str] | None = None

    def compose(self) -> ComposeResult:
        yield Static(self.session, id="title", classes="title-bar")
        with TabbedContent(initial="overview", id="tabs"):
            with TabPane("Overview [1]", id="overview"), VerticalScroll():
                yield Static("loading…", id="overview-body")
            with TabPane("Metrics [2]", id="metrics"), Horizontal():
                yield SelectionList[str](id="metric-picker")
                yield MetricPlot(id="plot")
            with TabPane("Logs [3]", id="logs"):
                yield LogPane(self.session, id="log-pane")
            with TabPane("Snapshots [4]", id="snapshots"):
                yield SnapshotTable(self.session, id="snapshot-table")
        yield StatusLine()
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "sync_status", self._on_sync, init=False)
        self._load()

    def _on_sync(self, _status: object) -> None:
        self._load()
        self.query_one(SnapshotTable).reload()

    # --- data -------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="session-detail", name="session-detail")
    def _load(self) -> None:
        app = nsml_app(self)
        try:
            detail = app.workspace.show(self.session, now=app.clock())
            names = app.workspace.metric_names(self.session)
        except NsmlError as exc:
            self.post_message(self.DetailLoaded(None, [], str(exc)))
            return
        self.post_message(self.DetailLoaded(detail, names))

    def on_session_screen_detail_loaded(self, message: DetailLoaded) -> None:
        if message.detail is None:
            self.query_one("#overview-body", Static).update(message.error or "gone")
            return
        self.detail = message.detail
        detail = printable_tree(message.detail)  # nothing a job wrote acts on the terminal
        self.query_one("#title", Static).update(title_line(detail))
        self.query_one("#overview-body", Static).update(overview(detail))
        picker: SelectionList[str] = self.query_one("#metric-picker", SelectionList)
        if message.metrics != self.metrics:
            self.metrics = message.metrics
            if self._picked is None:
                key = nsml_app(self).workspace.key_metric(message.metrics)
                self._picked = {key} if key in message.metrics else set(message.metrics[:1])
            picker.clear_options()
            picker.add_options(
                [Selection(name, name, name in self._picked) for name in message.metrics]
            )
        self._load_curves(sorted(self._picked or ()), self.query_one(MetricPlot).buckets())

    @on(SelectionList.SelectedChanged, "#metric-picker")
    def _picked_changed(self, event: SelectionList.SelectedChanged[str]) -> None:
        picked = set(event.selection_list.selected)
        if picked != self._picked:
            self._picked = picked
            self._load_curves(sorted(picked), self.query_one(MetricPlot).buckets())

    @work(thread=True, exclusive=True, group="session-curves", name="session-curves")
    def _load_curves(self, names: list[str], buckets: int) -> None:
        workspace = nsml_app(self).workspace
        try:
            curves: list[tuple[str, PlotCurve]] = [
                (name, workspace.metric_series(self.session, name, buckets)) for name in names
            ]
            marks = [step for step, _ in workspace.hyperparameter_marks([self.session])]
        except NsmlError:
            return
        self.post_message(self.CurvesLoaded(names, curves, marks))

    def on_session_screen_curves_loaded(self, message: CurvesLoaded) -> None:
        # Workers of one group are exclusive, but a thread cannot be stopped: a slow load for
        # an earlier pick may finish after the load for the ticks on screen now. Only the
        # curves of the current pick are drawn.
        if message.names != sorted(self._picked or ()):
            return
        points = sum(series.points for _, series in message.curves)
        title = f"{self.session} · {points:,} points" if message.curves else "pick metrics ←"
        self.query_one(MetricPlot).show_curves(message.curves, title=title, marks=message.marks)

    # --- keys -------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """The keys act on what the tab shows: focus its main widget."""
        targets = {
            "metrics": "#metric-picker",
            "logs": "#log",
            "snapshots": "#snapshot-table",
        }
        target = targets.get(event.pane.id or "")
        if target:
            self.query_one(target).focus()

    def action_follow(self) -> None:
        self.query_one(LogPane).toggle_follow()

    def action_stop(self) -> None:
        dialog = ConfirmDialog(
            f"Stop {self.session}?",
            "Slurm cancels the job (scancel); the run directory stays.",
            confirm="Stop",
        )

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self._run_stop()

        self.app.push_screen(dialog, done)

    @work(thread=True, exclusive=True, group="session-stop", name="stop")
    def _run_stop(self) -> None:
        try:
            jobs = nsml_app(self).workspace.stop(self.session)
        except NsmlError as exc:
            self.post_message(self.ActionDone("", [str(exc)]))
            return
        self.post_message(self.ActionDone(f"cancel requested (job {', '.join(jobs)})", []))

    def action_fork(self) -> None:
        table = self.query_one(SnapshotTable)
        tag = table.current_tag if self.query_one(TabbedContent).active == "snapshots" else None

        def done(request: ForkRequest | None) -> None:
            if request is not None:
                self._run_fork(request)

        self.app.push_screen(ForkDialog(self.session, snapshot=tag), done)

    @work(thread=True, exclusive=True, group="session-fork", name="fork")
    def _run_fork(self, request: ForkRequest) -> None:
        try:
            forked = nsml_app(self).workspace.fork(request)
        except NsmlError as exc:
            self.post_message(self.ActionDone("", [f"fork: {exc}"]))
            return
        child = forked.submitted
        assert child is not None
        text = f"forked {forked.tag} → {child.name} (job {child.job_id})"
        self.post_message(self.ActionDone(text, []))

    def action_hparams(self) -> None:
        current = (self.detail or {}).get("hyperparameters") or {}
        shown = " ".join(f"{key}={value}" for key, value in sorted(current.items()))

        def done(request: HParamChanges | None) -> None:
            if request is not None:
                self._run_hparams(request)

        self.app.push_screen(HParamDialog(self.session, shown), done)

    @work(thread=True, exclusive=True, group="session-hparams", name="set-hyperparameters")
    def _run_hparams(self, request: HParamChanges) -> None:
        workspace = nsml_app(self).workspace
        try:
            if request.add_new:
                known = workspace.hyperparameter_state(self.session).current
                sets = [text for text in request.changes if text.split("=", 1)[0] in known]
                adds = [text for text in request.changes if text not in sets]
            else:
                sets, adds = request.changes, []
            done = workspace.set_hyperparameters(self.session, sets, adds=adds)
        except NsmlError as exc:
            self.post_message(self.ActionDone("", [f"set: {exc}"]))
            return
        moved = ", ".join(f"{key}={value}" for key, value in sorted(done.changes.items()))
        text = f"set {moved} (version {done.version}); the job takes it at its next look"
        self.post_message(self.ActionDone(text, []))

    def action_memo(self) -> None:
        memo = (self.detail or {}).get("memo", "")

        def done(text: str | None) -> None:
            if text is not None:
                self._run_memo(text)

        self.app.push_screen(MemoDialog(self.session, memo), done)

    @work(thread=True, exclusive=True, group="session-memo", name="memo")
    def _run_memo(self, memo: str) -> None:
        try:
            nsml_app(self).workspace.set_memo(self.session, memo)
        except NsmlError as exc:
            self.post_message(self.ActionDone("", [str(exc)]))
            return
        self.post_message(self.ActionDone("memo saved", []))

    def _snapshot_or_hint(self) -> str | None:
        tabs = self.query_one(TabbedContent)
        tag = self.query_one(SnapshotTable).current_tag
        if tabs.active != "snapshots" or tag is None:
            tabs.active = "snapshots"
            self.notify("pick a snapshot in the list, then press the key again")
            return None
        return tag

    def action_pin(self) -> None:
        tag = self._snapshot_or_hint()
        if tag is None:
            return
        info = self.query_one(SnapshotTable).current
        pinned = not (info is not None and info.pinned)
        verb = "Pin" if pinned else "Unpin"
        dialog = ConfirmDialog(
            f"{verb} snapshot {tag} of {self.session}?",
            "A pinned snapshot is never deleted by cleanup (gc) or by the delete key."
            if pinned
            else "Unpinned snapshots may be deleted by cleanup.",
            confirm=verb,
        )

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self._run_pin(tag, pinned)

        self.app.push_screen(dialog, done)

    @work(thread=True, exclusive=True, group="session-pin", name="pin")
    def _run_pin(self, tag: str, pinned: bool) -> None:
        try:
            nsml_app(self).workspace.pin_snapshot(self.session, tag, pinned=pinned)
        except NsmlError as exc:
            self.post_message(self.ActionDone("", [str(exc)]))
            return
        self.post_message(self.ActionDone(f"{'pinned' if pinned else 'unpinned'} {tag}", []))

    def action_delete_snapshot(self) -> None:
        tag = self._snapshot_or_hint()
        if tag is None:
            return
        dialog = ConfirmDialog(
            f"Delete snapshot {tag} of {self.session}?",
            "Its folder is removed from the run directory. This cannot be undone.",
            confirm="Delete",
        )

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self._run_delete(tag)

        self.app.push_screen(dialog, done)

    @work(thread=True, exclusive=True, group="session-delete", name="delete-snapshot")
    def _run_delete(self, tag: str) -> None:
        try:
            nsml_app(self).workspace.remove_snapshot(self.session, tag)
        except NsmlError as exc:
            self.post_message(self.ActionDone("", [str(exc)]))
            return
        self.post_message(self.ActionDone(f"deleted snapshot {tag}", []))

    def on_session_screen_action_done(self, message: ActionDone) -> None:
        if message.text:
            self.notify(message.text, timeout=6)
        for error in message.errors:
            self.notify(error, severity="error", timeout=10)
        self.query_one(SnapshotTable).reload()
        self._load()
        nsml_app(self).request_sync()
