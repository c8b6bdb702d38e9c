"""The status line at the bottom of every screen: "synced N s ago", or, in warning colours,
"cluster X unreachable — showing cached data" while a cluster does not answer."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from ..state import SyncStatus
from ..widgets.styling import ago_text


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $text-muted;
    }
    StatusLine.-unreachable {
        background: $warning 30%;
        color: $text;
    }
    """

    status: reactive[SyncStatus] = reactive(SyncStatus, always_update=True)
    info: reactive[str] = reactive("")

    def on_mount(self) -> None:
        app = self.app
        self.watch(app, "sync_status", self._take_status)
        self.set_interval(1.0, self._tick)

    def _take_status(self, status: SyncStatus) -> None:
        self.status = status

    def _tick(self) -> None:
        if self.status.synced_at is not None:
            self._render_status()

    def watch_status(self, _status: SyncStatus) -> None:
        self._render_status()

    def watch_info(self, _info: str) -> None:
        self._render_status()

    def _render_status(self) -> None:
        status = self.status
        now = getattr(self.app, "clock")()  # noqa: B009 - NsmlApp.clock, frozen in tests
        text = Text()
        down = status.unreachable
        self.set_class(bool(down), "-unreachable")
        if down:
            cluster, error = next(iter(sorted(down.items())))
            text.append(f"⚠ cluster {cluster} unreachable — showing cached data", "bold")
            text.append(f"  ({error})" if error else "")
            if len(down) > 1:
                text.append(f"  (+{len(down) - 1} more)")
        elif status.synced_at is None:
            text.append("⟳ syncing…")
        else:
            text.append("● ", "green")
            text.append(f"synced {ago_text(now - status.synced_at)}")
            if status.note:
                text.append(f" · {status.note}")
        if self.info:
            text.append("   ")
            text.append(self.info, "dim")
        self.update(text)
