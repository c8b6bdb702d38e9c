"""The nsml-hpc TUI: the app, its background sync, and the screens' shared handles.

The app owns one :class:`~nsml_hpc.workspace.Workspace` (catalog + backends), the only way
its screens reach the library, and runs the sync in ONE background worker on two clocks
(:mod:`nsml_hpc.sync.clocks`): each round reads the run directories (the file clock,
``sync_interval_seconds``, 1 s while sessions are live, so a start or an end the job wrapper
writes shows within about a second), and asks Slurm only when the Slurm clock, shared through
the catalog by every process of the user, says so (60 s while sessions wait, four times that
while they run with a live wrapper). ``r`` asks Slurm now (after the poll floor). Screens
never block: every catalog, Slurm or file call runs in a worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar, cast

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.message import Message
from textual.reactive import reactive
from textual.worker import Worker, get_current_worker

from nsml_hpc.errors import NsmlError
from nsml_hpc.sync.clocks import FileClock
from nsml_hpc.sync.run import SyncReport
from nsml_hpc.workspace import Workspace

from .state import SyncStatus

Clock = Callable[[], float]
Syncer = Callable[[Workspace], SyncReport]
WAKE_GRANULARITY = 0.25


class NsmlApp(App[None]):
    """``nsml-hpc tui``: sessions, live metrics, logs, snapshots, compare, cluster."""

    CSS_PATH = "app.tcss"
    TITLE = "nsml-hpc"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Keys"),
        Binding("q", "quit", "Quit"),
        Binding("r", "sync_now", "Sync now", show=False),
        Binding("C", "cluster", "Cluster"),
    ]

    sync_status: reactive[SyncStatus] = reactive(SyncStatus, always_update=True)

    @dataclass
    class Synced(Message):
        """The background sync finished one round."""

        report: SyncReport | None
        error: str | None
        unreachable: dict[str, str]  # cluster -> error of its last query
        at: float

    def __init__(
        self,
        workspace: Workspace,
        *,
        clock: Clock = time.time,
        syncer: Syncer = Workspace.sync,
        sync_interval: float | None = None,
        user: str | None = None,
        open_session: str | None = None,
    ) -> None:
        super().__init__()
        self.workspace = workspace
        self.clock = clock
        self.syncer = syncer
        self.sync_interval = sync_interval or workspace.settings.sync_interval_seconds
        self.user = user
        self.open_session = open_session
        self.sync_rounds = 0
        self._wake = threading.Event()
        self._refresh = threading.Event()  # the user asked for Slurm's answer now
        self._cluster_errors: dict[str, str] = {}
        self._sync_errors: dict[str, str] = {}

    def on_mount(self) -> None:
        from .sessions.screen import SessionsScreen

        self.push_screen(SessionsScreen())
        if self.open_session:
            from .session.screen import SessionScreen

            self.push_screen(SessionScreen(self.open_session))
        self._sync_loop()

    # --- background sync --------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="sync", name="sync-loop")
    def _sync_loop(self) -> None:
        worker = get_current_worker()
        clock = FileClock(self.sync_interval)
        wait = self.sync_interval
        while not worker.is_cancelled:
            self._wake.clear()
            report: SyncReport | None = None
            error: str | None = None
            unreachable: dict[str, str] = {}
            try:
                if self._refresh.is_set():
                    self._refresh.clear()
                    clusters = self.workspace.session_clusters()
                    self.workspace.ask_slurm_soon(clusters, "refresh in the TUI")
                report = self.syncer(self.workspace)
                unreachable = self.workspace.unreachable_clusters(report)
            except NsmlError as exc:
                error = str(exc)
            if _cancelled(worker):
                return
            self.post_message(self.Synced(report, error, unreachable, self.clock()))
            live = report is None or bool(report.sessions_scraped or report.errors)
            wait = clock.next_wait(wait, live=live)
            deadline = time.monotonic() + wait
            while not worker.is_cancelled and not self._wake.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._wake.wait(min(left, WAKE_GRANULARITY))

    def on_nsml_app_synced(self, message: Synced) -> None:
        self.sync_rounds += 1
        if message.report is not None:
            self._sync_errors = dict(message.unreachable)
            for cluster in message.report.queried:
                if cluster not in message.report.errors:
                    self._cluster_errors.pop(cluster, None)  # it answered again
        elif message.error:
            self._sync_errors = {"catalog": message.error}
        self._publish(synced_at=message.at, bump=True)

    def request_sync(self, *, ask_slurm: bool = False) -> None:
        """Read the run directories now, e.g. after an action; ``ask_slurm``: and ask Slurm
        as soon as the shared poll floor allows (actions through the workspace ask it
        themselves)."""
        if ask_slurm:
            self._refresh.set()
        self._wake.set()

    def report_cluster_health(self, cluster: str, error: str | None) -> None:
        """The cluster screen's own queries (sinfo/squeue) count for the status line too."""
        if error is None:
            self._cluster_errors.pop(cluster, None)
        else:
            self._cluster_errors[cluster] = error
        self._publish()

    def _publish(self, *, synced_at: float | None = None, bump: bool = False) -> None:
        current = self.sync_status
        self.sync_status = replace(
            current,
            synced_at=synced_at if synced_at is not None else current.synced_at,
            unreachable={**self._cluster_errors, **self._sync_errors},
            generation=current.generation + (1 if bump else 0),
        )

    # --- app-wide actions -------------------------------------------------------------------

    def action_sync_now(self) -> None:
        self.request_sync(ask_slurm=True)
        self.notify("syncing…", timeout=1.5)

    def action_help(self) -> None:
        from .dialogs.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.screen.active_bindings, self.screen.title or ""))

    def action_cluster(self) -> None:
        from .cluster.screen import ClusterScreen

        if not isinstance(self.screen, ClusterScreen):
            self.push_screen(ClusterScreen())


def _cancelled(worker: Worker[None]) -> bool:
    return worker.is_cancelled


def nsml_app(node: DOMNode) -> NsmlApp:
    """The running :class:`NsmlApp` of a widget or screen (typed)."""
    return cast(NsmlApp, node.app)
