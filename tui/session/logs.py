"""The log pane: follows the session's Slurm output files (all job ids, oldest first).

While the pane is on screen, a worker reads what the files gained since the last look every
second (:class:`nsml_hpc.sessions.logtail.LogTail`: byte offsets, never a re-read); off
screen it does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Log, Static
from textual.worker import get_current_worker

from nsml_hpc.errors import NsmlError
from nsml_hpc.sessions.logtail import LogTail

from ..app import nsml_app

POLL_SECONDS = 1.0
MAX_LINES = 20_000


class LogPane(Vertical):
    DEFAULT_CSS = """
    LogPane { height: 1fr; }
    LogPane > #log-info { height: 1; color: $text-muted; }
    LogPane > Log { height: 1fr; }
    """

    @dataclass
    class Chunk(Message):
        text: str
        paths: list[str]
        error: str | None = None

    def __init__(self, session: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session
        self.tail: LogTail | None = None
        self.follow = True
        self._reading = False

    def compose(self) -> ComposeResult:
        yield Static("", id="log-info")
        yield Log(max_lines=MAX_LINES, auto_scroll=True, id="log")

    def on_mount(self) -> None:
        self.set_interval(POLL_SECONDS, self._tick)
        self._tick()

    def _tick(self) -> None:
        if self._reading or not self.is_on_screen:
            return
        self._reading = True
        self._read()

    @work(thread=True, exclusive=True, group="session-log", name="log-tail")
    def _read(self) -> None:
        workspace = nsml_app(self).workspace
        try:
            if self.tail is None:
                self.tail = workspace.log_tail(self.session)
            paths = [str(path) for path in workspace.log_paths(self.session)]
            data = self.tail.read_new(paths)
        except (NsmlError, OSError) as exc:
            self.post_message(self.Chunk("", [], str(exc)))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.Chunk(data.decode("utf-8", "replace"), paths))

    def on_log_pane_chunk(self, message: Chunk) -> None:
        self._reading = False
        info = self.query_one("#log-info", Static)
        if message.error:
            info.update(f"cannot read the log: {message.error}")
            return
        names = ", ".join(path.rsplit("/", 1)[-1] for path in message.paths) or "no output yet"
        info.update(f"{names}  ·  follow {'on' if self.follow else 'off'} (F)")
        if message.text:
            log = self.query_one(Log)
            log.write(message.text)

    def toggle_follow(self) -> None:
        self.follow = not self.follow
        log = self.query_one(Log)
        log.auto_scroll = self.follow
        if self.follow:
            log.scroll_end(animate=False)
