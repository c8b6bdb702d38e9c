"""``?``: every key of the screen underneath (shown in the footer or not), and the app's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "space": "space",
    "escape": "esc",
    "enter": "enter",
    "pageup": "pgup",
    "pagedown": "pgdn",
}


def key_text(key: str) -> str:
    return ", ".join(KEY_NAMES.get(part, part) for part in key.split(","))


def binding_rows(active: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(where, keys, what) for every active binding, the screen's own first, keys merged."""
    merged: dict[tuple[str, str], list[str]] = {}
    for key, active_binding in active.items():
        binding: Binding = active_binding.binding
        node = active_binding.node
        where = "everywhere" if node is node.app else _where(node)
        description = binding.description or binding.action
        merged.setdefault((where, description), []).append(KEY_NAMES.get(key, key))
    rows = [(where, ", ".join(keys), what) for (where, what), keys in merged.items()]
    return sorted(rows, key=lambda row: (row[0] == "everywhere", row[0]))


def _where(node: Any) -> str:
    """``SessionsScreen`` -> ``sessions screen``, ``SessionTable`` -> ``session table``."""
    name = type(node).__name__
    words = "".join(f" {char.lower()}" if char.isupper() else char for char in name).strip()
    return words.replace("data table", "table")


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close"),
    ]

    def __init__(self, active: Mapping[str, Any], title: str) -> None:
        super().__init__()
        self.rows = binding_rows(active)
        self.screen_title = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Keys — {self.screen_title}  (esc closes)", classes="dialog-title")
            table: DataTable[str] = DataTable(cursor_type="row", zebra_stripes=True)
            table.add_columns("where", "keys", "what")
            for row in self.rows:
                table.add_row(*row)
            yield table

    def action_close(self) -> None:
        self.dismiss(None)
