"""A metric plot: one or more downsampled curves over steps (textual-plotext).

Curves arrive already reduced to about two points per braille column
(:meth:`nsml_hpc.workspace.Workspace.metric_series`), so drawing never touches more than a few
hundred points whatever the session logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from textual_plotext import PlotextPlot

COLORS = ("cyan", "orange", "green", "magenta", "yellow", "blue", "red", "white")


class PlotCurve(Protocol):
    """What the plot draws of a curve: its points, and how many were stored before
    downsampling (a metric series of the workspace is one)."""

    @property
    def xs(self) -> Sequence[float]: ...
    @property
    def ys(self) -> Sequence[float]: ...
    @property
    def points(self) -> int: ...


class MetricPlot(PlotextPlot):
    DEFAULT_CSS = """
    MetricPlot {
        height: 1fr;
        min-height: 8;
    }
    """

    def buckets(self) -> int:
        """How many x slices the plot can show: two braille dots per cell column."""
        width = self.size.width or 80
        return max(2 * (width - 10), 20)

    def show_curves(
        self,
        curves: list[tuple[str, PlotCurve]],
        *,
        title: str = "",
        marks: Sequence[float] = (),
    ) -> None:
        """Draw ``curves``; ``marks``: steps where a hyperparameter changed (vertical lines)."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        drawn = 0
        for index, (label, series) in enumerate(curves):
            if not series.xs:
                continue
            plt.plot(series.xs, series.ys, label=label, color=COLORS[index % len(COLORS)])
            drawn += 1
        if drawn:
            for step in marks:
                plt.vline(step, "red")
        plt.xlabel("step")
        if not drawn:
            title = f"{title} — no points yet" if title else "no points yet"
        plt.title(title)
        self.refresh()
