"""The snapshot list of a session: re-read from its run directory into the catalog in a
worker (:meth:`nsml_hpc.workspace.Workspace.snapshots`, the listing of ``nsml-hpc model ls``),
with each snapshot's flags: latest, pinned, forked (a child starts from it), DAMAGED."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.message import Message
from textual.widgets import DataTable

from nsml_hpc.errors import NsmlError
from nsml_hpc.formatting import format_bytes, format_metrics, format_time
from nsml_hpc.snapshots.actions import SnapshotRow

from ..app import nsml_app


class SnapshotTable(DataTable[str | Text]):
    @dataclass
    class Listed(Message):
        snapshots: list[SnapshotRow]
        error: str | None = None

    def __init__(self, session: str, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.session = session
        self.snapshots: list[SnapshotRow] = []

    def on_mount(self) -> None:
        self.add_columns("tag", "step", "metrics", "size", "files", "flags", "saved")
        self.reload()

    def reload(self) -> None:
        self._list()

    @work(thread=True, exclusive=True, group="session-snapshots", name="snapshots")
    def _list(self) -> None:
        try:
            found = nsml_app(self).workspace.snapshots(self.session)
        except NsmlError as exc:
            self.post_message(self.Listed([], str(exc)))
            return
        self.post_message(self.Listed(found))

    def on_snapshot_table_listed(self, message: Listed) -> None:
        keep = self.current_tag
        self.snapshots = message.snapshots
        self.clear()
        for info in message.snapshots:
            self.add_row(
                info.tag,
                "-" if info.step is None else str(info.step),
                format_metrics(info.metrics, 40) or "-",
                format_bytes(info.bytes),
                str(info.files),
                flags_text(info),
                format_time(info.created_at),
                key=info.tag,
            )
        if not message.snapshots:
            self.add_row("-", "", message.error or "no snapshots yet", "", "", "", "", key="-")
        if keep is not None and any(info.tag == keep for info in message.snapshots):
            self.move_cursor(row=self.get_row_index(keep))

    @property
    def current(self) -> SnapshotRow | None:
        if not self.snapshots or self.cursor_row < 0 or self.cursor_row >= len(self.snapshots):
            return None
        return self.snapshots[self.cursor_row]

    @property
    def current_tag(self) -> str | None:
        info = self.current
        return info.tag if info else None


def flags_text(row: SnapshotRow) -> Text:
    """``latest,pinned,forked,DAMAGED`` as the CLI prints them; DAMAGED (with its reason) red."""
    text = Text()
    for name in row.flags.split(",") if row.flags else []:
        if text:
            text.append(",")
        if name == "DAMAGED":
            text.append(f"DAMAGED ({row.problem})", style="bold red")
        elif name == "pinned":
            text.append("pinned", style="bold")
        else:
            text.append(name)
    return text
