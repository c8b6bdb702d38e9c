"""Change a running session's hyperparameters (``nsml-hpc set`` in the TUI): the changes as
``lr=0.01 warmup=5``; names the session does not have yet need the "add new" switch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static, Switch

from nsml_hpc.errors import SpecError
from nsml_hpc.snapshots.fork import parse_changes


@dataclass(frozen=True)
class HParamChanges:
    """What the dialog asks for: ``KEY=VALUE`` texts, and whether new names may be added."""

    changes: list[str]
    add_new: bool


class HParamDialog(ModalScreen[HParamChanges | None]):
    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, session: str, current: str = "") -> None:
        super().__init__()
        self.session = session
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Change hyperparameters of {self.session}", classes="dialog-title")
            if self.current:
                yield Static(f"now: {self.current}", classes="hint")
            yield Input(placeholder="lr=0.01 momentum=0.9", id="changes")
            with Horizontal(classes="switch-row"):
                yield Switch(False, id="add-new")
                yield Static("add names the session does not have yet")
            yield Static(
                "The job takes the change at its next look (nsml_hpc.hparam, report with a "
                "callback), within a few seconds.",
                classes="hint",
            )
            yield Static("", classes="error", id="error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Set", id="set", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#changes", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _set(self) -> None:
        text = self.query_one("#changes", Input).value.strip()
        try:
            changes = parse_changes(text)
            if not changes:
                raise SpecError("write at least one change: name=value")
        except SpecError as exc:
            self.query_one("#error", Static).update(str(exc))
            return
        self.dismiss(
            HParamChanges(
                [f"{key}={value}" for key, value in changes.items()],
                self.query_one("#add-new", Switch).value,
            )
        )

    @on(Input.Submitted, "#changes")
    def _submitted(self) -> None:
        self._set()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "set":
            self._set()
        else:
            self.dismiss(None)
