"""The TUI's modules as the tests name them: ``nsml_hpc.tui`` at run time, as the wheel ships
it, and the package ``tui`` for mypy, which checks the TUI under that name (setup.py maps
``tui/`` onto ``nsml_hpc.tui``; mypy cannot follow that mapping, so without this the tests
would see every TUI class as ``Any``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.app import NsmlApp
    from tui.cluster.screen import ClusterScreen
    from tui.compare.screen import CompareScreen
    from tui.dialogs.confirm import ConfirmDialog
    from tui.dialogs.fork import ForkDialog
    from tui.dialogs.help import HelpScreen
    from tui.dialogs.hparams import HParamDialog
    from tui.dialogs.memo import MemoDialog
    from tui.session.screen import SessionScreen
    from tui.sessions.layout import GroupLayout, RowSlot, visible_offsets
    from tui.sessions.screen import SessionsScreen
    from tui.sessions.table import SessionTable
    from tui.widgets.metric_plot import MetricPlot
    from tui.widgets.status_line import StatusLine
else:
    from nsml_hpc.tui.app import NsmlApp
    from nsml_hpc.tui.cluster.screen import ClusterScreen
    from nsml_hpc.tui.compare.screen import CompareScreen
    from nsml_hpc.tui.dialogs.confirm import ConfirmDialog
    from nsml_hpc.tui.dialogs.fork import ForkDialog
    from nsml_hpc.tui.dialogs.help import HelpScreen
    from nsml_hpc.tui.dialogs.hparams import HParamDialog
    from nsml_hpc.tui.dialogs.memo import MemoDialog
    from nsml_hpc.tui.session.screen import SessionScreen
    from nsml_hpc.tui.sessions.layout import GroupLayout, RowSlot, visible_offsets
    from nsml_hpc.tui.sessions.screen import SessionsScreen
    from nsml_hpc.tui.sessions.table import SessionTable
    from nsml_hpc.tui.widgets.metric_plot import MetricPlot
    from nsml_hpc.tui.widgets.status_line import StatusLine

__all__ = [
    "ClusterScreen",
    "CompareScreen",
    "ConfirmDialog",
    "ForkDialog",
    "GroupLayout",
    "HParamDialog",
    "HelpScreen",
    "MemoDialog",
    "MetricPlot",
    "NsmlApp",
    "RowSlot",
    "SessionScreen",
    "SessionTable",
    "SessionsScreen",
    "StatusLine",
    "visible_offsets",
]
