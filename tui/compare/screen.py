"""Compare marked sessions: one metric's curves overlaid (pick it on the left), the
hyperparameters that differ between them, and each metric's best and last value per session
(★ marks the best session). Data from :meth:`nsml_hpc.workspace.Workspace.compare`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, OptionList, Static
from textual.widgets.option_list import Option

from nsml_hpc.errors import NsmlError
from nsml_hpc.experiments.compare import Comparison

from ..app import nsml_app
from ..widgets.metric_plot import MetricPlot, PlotCurve
from ..widgets.status_line import StatusLine
from ..widgets.styling import metric_text


class CompareScreen(Screen[None]):
    CSS_PATH = "compare.tcss"
    TITLE = "compare"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back")]

    @dataclass
    class Compared(Message):
        comparison: Comparison | None
        error: str | None = None

    @dataclass
    class CurvesLoaded(Message):
        metric: str
        curves: list[tuple[str, PlotCurve]]

    def __init__(self, sessions: list[str]) -> None:
        super().__init__()
        self.sessions = sessions
        self.comparison: Comparison | None = None
        self.metric: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"compare · {', '.join(self.sessions)}", id="title", classes="title-bar")
        with Horizontal(id="compare-top"):
            yield OptionList(id="compare-metrics")
            yield MetricPlot(id="compare-plot")
        with Horizontal(id="compare-tables"):
            with Vertical():
                yield Static("Hyperparameters that differ", classes="table-title")
                yield DataTable[Text](id="hparams", zebra_stripes=True, cursor_type="row")
            with Vertical():
                yield Static("Metrics: best (last) per session, ★ best", classes="table-title")
                yield DataTable[Text](id="bests", zebra_stripes=True, cursor_type="row")
        yield StatusLine()
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "sync_status", self._on_sync, init=False)
        self._compare()

    def _on_sync(self, _status: object) -> None:
        self._compare()

    @work(thread=True, exclusive=True, group="compare", name="compare")
    def _compare(self) -> None:
        try:
            comparison = nsml_app(self).workspace.compare(self.sessions)
        except NsmlError as exc:
            self.post_message(self.Compared(None, str(exc)))
            return
        self.post_message(self.Compared(comparison))

    def on_compare_screen_compared(self, message: Compared) -> None:
        if message.comparison is None:
            self.notify(message.error or "cannot compare", severity="error")
            return
        comparison = self.comparison = message.comparison
        metrics = sorted(comparison.metrics)
        options = self.query_one("#compare-metrics", OptionList)
        if [option.id for option in options.options] != metrics:
            options.clear_options()
            options.add_options([Option(name, id=name) for name in metrics])
        if self.metric not in metrics:
            self.metric = nsml_app(self).workspace.key_metric(metrics)
        if self.metric in metrics:
            options.highlighted = metrics.index(self.metric)
        self._fill_tables(comparison)
        if self.metric:
            self._load_curves(self.metric, self.query_one(MetricPlot).buckets())

    def _fill_tables(self, comparison: Comparison) -> None:
        hparams: DataTable[Text] = self.query_one("#hparams", DataTable)
        hparams.clear(columns=True)
        hparams.add_column("session")
        names = list(comparison.differing)
        for name in names:
            hparams.add_column(name)
        for session in comparison.sessions:
            cells = [Text(session, "bold")]
            for name in names:
                value = comparison.differing[name].get(session)
                cells.append(Text("—", "dim") if value is None else Text(str(value)))
            hparams.add_row(*cells)
        if not names:
            hparams.add_column("")
            hparams.add_row(Text("all hyperparameters are equal", "dim"), Text(""))

        bests: DataTable[Text] = self.query_one("#bests", DataTable)
        bests.clear(columns=True)
        bests.add_column("metric")
        for session in comparison.sessions:
            bests.add_column(session)
        for metric in sorted(comparison.metrics):
            winner = comparison.best_session(metric)
            goal = comparison.goals[metric]
            cells = [Text(f"{metric} ({'↓' if goal == 'min' else '↑'})")]
            for session in comparison.sessions:
                stat = comparison.metrics[metric].get(session)
                if stat is None:
                    cells.append(Text("—", "dim"))
                    continue
                text = Text(f"{metric_text(stat.best)} ({metric_text(stat.last)})")
                if session == winner:
                    text = Text("★ ", "bold yellow") + Text(text.plain, "bold")
                cells.append(text)
            bests.add_row(*cells)

    @on(OptionList.OptionHighlighted, "#compare-metrics")
    def _metric_picked(self, event: OptionList.OptionHighlighted) -> None:
        metric = event.option.id
        if metric and metric != self.metric:
            self.metric = metric
            self._load_curves(metric, self.query_one(MetricPlot).buckets())

    @work(thread=True, exclusive=True, group="compare-curves", name="compare-curves")
    def _load_curves(self, metric: str, buckets: int) -> None:
        comparison = self.comparison
        if comparison is None:
            return
        workspace = nsml_app(self).workspace
        curves: list[tuple[str, PlotCurve]] = []
        for session in comparison.session_ids:
            try:
                curves.append((session, workspace.metric_series(session, metric, buckets)))
            except NsmlError:  # removed since the comparison was read
                continue
        self.post_message(self.CurvesLoaded(metric, curves))

    def on_compare_screen_curves_loaded(self, message: CurvesLoaded) -> None:
        if message.metric == self.metric:
            self.query_one(MetricPlot).show_curves(message.curves, title=message.metric)

    def action_back(self) -> None:
        self.app.pop_screen()
