"""The fork form: start from a snapshot (or from scratch), change hyperparameters, GPUs.

The parent's hyperparameters, GPUs and snapshots are read in a worker; the form returns a
:class:`~nsml_hpc.actions.ForkRequest` that :func:`nsml_hpc.actions.fork_session` submits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static

from nsml_hpc.actions import ForkRequest, session_snapshots
from nsml_hpc.catalog.sessions import get_session
from nsml_hpc.errors import NsmlError, SpecError
from nsml_hpc.forking import parse_overrides
from nsml_hpc.snapshot_files import SnapshotInfo
from nsml_hpc.spec import parse_count

from ..app import nsml_app

NO_SNAPSHOT = "__none__"


class ForkDialog(ModalScreen[ForkRequest | None]):
    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    @dataclass
    class ParentLoaded(Message):
        hyperparameters: dict[str, Any]
        gpus: int
        snapshots: list[SnapshotInfo]
        error: str | None = None

    def __init__(self, session: str, *, snapshot: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.preselected = snapshot

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Fork {self.session}", classes="dialog-title")
            yield Static("", id="current", classes="dialog-body")
            yield Static("start from snapshot", classes="field-label")
            yield Select[str](
                [("no snapshot (start fresh)", NO_SNAPSHOT)],
                value=NO_SNAPSHOT,
                allow_blank=False,
                id="snapshot",
            )
            yield Static(
                "changed hyperparameters (lr=0.05 epochs=20, or --lr 0.05)", classes="field-label"
            )
            yield Input(placeholder="name=value …", id="changes")
            yield Static("GPUs", classes="field-label")
            yield Input(placeholder="as the parent", id="gpus", type="integer")
            yield Static("memo", classes="field-label")
            yield Input(placeholder=f"fork of {self.session}", id="memo")
            yield Static("", classes="error", id="error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Fork", id="fork", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#changes", Input).focus()
        self._load_parent()

    @work(thread=True, exclusive=True, group="fork-parent", name="fork-parent")
    def _load_parent(self) -> None:
        workspace = nsml_app(self).workspace
        try:
            record = get_session(workspace.catalog, self.session)
            snapshots = session_snapshots(workspace, self.session)
        except NsmlError as exc:
            self.post_message(self.ParentLoaded({}, 0, [], str(exc)))
            return
        hyperparameters = json.loads(record.hyperparameters_json)
        self.post_message(self.ParentLoaded(hyperparameters, record.gpus, snapshots))

    def on_fork_dialog_parent_loaded(self, message: ParentLoaded) -> None:
        if message.error:
            self.query_one("#error", Static).update(message.error)
            return
        current = " ".join(f"{key}={value}" for key, value in message.hyperparameters.items())
        self.query_one("#current", Static).update(
            f"parent: {current or 'no hyperparameters'} · {message.gpus} GPU(s)"
        )
        self.query_one("#gpus", Input).placeholder = f"{message.gpus} (as the parent)"
        options = [("no snapshot (start fresh)", NO_SNAPSHOT)] + [
            (f"{info.tag}  (step {info.step if info.step is not None else '?'})", info.tag)
            for info in message.snapshots
        ]
        select = self.query_one("#snapshot", Select)
        select.set_options(options)
        tags = {info.tag for info in message.snapshots}
        select.value = self.preselected if self.preselected in tags else NO_SNAPSHOT

    def action_cancel(self) -> None:
        self.dismiss(None)

    def request(self) -> ForkRequest:
        """The form as a request; :class:`SpecError` for bad values."""
        changes = parse_overrides(self.query_one("#changes", Input).value)
        gpus_text = self.query_one("#gpus", Input).value.strip()
        gpus = parse_count("GPUs", gpus_text) if gpus_text else None
        memo = self.query_one("#memo", Input).value.strip() or None
        snapshot = self.query_one("#snapshot", Select).value
        return ForkRequest(
            snapshot=None if snapshot in (NO_SNAPSHOT, Select.BLANK) else str(snapshot),
            changes=changes,
            gpus=gpus,
            memo=memo,
        )

    def _submit(self) -> None:
        try:
            request = self.request()
        except SpecError as exc:
            self.query_one("#error", Static).update(str(exc))
            return
        self.dismiss(request)

    @on(Input.Submitted)
    def _entered(self) -> None:
        self._submit()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "fork":
            self._submit()
        else:
            self.dismiss(None)
