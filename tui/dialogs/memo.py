"""Edit a session's memo (one line); saved through :meth:`nsml_hpc.workspace.Workspace.set_memo`."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from nsml_hpc.errors import SpecError
from nsml_hpc.job.spec import validate_memo


class MemoDialog(ModalScreen[str | None]):
    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, session: str, memo: str) -> None:
        super().__init__()
        self.session = session
        self.memo = memo

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Memo of {self.session}", classes="dialog-title")
            yield Input(self.memo, placeholder="a note to remember this session by", id="memo")
            yield Static("", classes="error", id="error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#memo", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _save(self) -> None:
        text = self.query_one("#memo", Input).value.strip()
        try:
            validate_memo(text)
        except SpecError as exc:
            self.query_one("#error", Static).update(str(exc))
            return
        self.dismiss(text)

    @on(Input.Submitted, "#memo")
    def _submitted(self) -> None:
        self._save()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self._save()
        else:
            self.dismiss(None)
