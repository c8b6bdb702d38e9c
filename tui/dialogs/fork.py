"""The fork form: the snapshot to start from (the latest by default), changed
hyperparameters, GPUs, memo.

A fork starts from one of the parent's snapshots, as NSML's did; a session without one has
nothing to fork from, and the form says so. The parent's hyperparameters, GPUs and snapshots
are read in a worker; the form returns a :class:`nsml_hpc.snapshots.fork.ForkRequest` that
:meth:`nsml_hpc.workspace.Workspace.fork` submits (the same as ``nsml-hpc fork``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static

from nsml_hpc.errors import NsmlError, SpecError
from nsml_hpc.job.spec import parse_count
from nsml_hpc.snapshots.actions import SnapshotRow
from nsml_hpc.snapshots.fork import ForkRequest, parse_changes, split_changes

from ..app import nsml_app

NO_SNAPSHOTS = "this session has no snapshot to fork from (a fork starts from a snapshot)"


class ForkDialog(ModalScreen[ForkRequest | None]):
    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    @dataclass
    class ParentLoaded(Message):
        hyperparameters: dict[str, Any]
        gpus: int
        snapshots: list[SnapshotRow]
        error: str | None = None

    def __init__(self, session: str, *, snapshot: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.preselected = snapshot
        self.parent_keys: list[str] = []
        self.snapshot_tags: list[str] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Fork {self.session}", classes="dialog-title")
            yield Static("", id="current", classes="dialog-body")
            yield Static("start from snapshot", classes="field-label")
            yield Select[str]([], prompt="loading snapshots…", id="snapshot")
            yield Static(
                "changed hyperparameters: lr=0.05 epochs=20 (new names are added)",
                classes="field-label",
            )
            yield Input(placeholder="name=value …", id="changes")
            yield Static("GPUs", classes="field-label")
            yield Input(placeholder="as the parent", id="gpus", type="integer")
            yield Static("memo", classes="field-label")
            yield Input(placeholder=f"fork of {self.session}:<snapshot>", id="memo")
            yield Static("", classes="error", id="error")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Fork", id="fork", variant="primary", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#changes", Input).focus()
        self._load_parent()

    @work(thread=True, exclusive=True, group="fork-parent", name="fork-parent")
    def _load_parent(self) -> None:
        workspace = nsml_app(self).workspace
        try:
            parent = workspace.show(self.session)
            snapshots = workspace.snapshots(self.session)
        except NsmlError as exc:
            self.post_message(self.ParentLoaded({}, 0, [], str(exc)))
            return
        # the fork's --gpus is per node, as the parent asked (the row's gpus count all nodes)
        per_node = parent["spec"]["resources"].get("gpus", parent["gpus"])
        self.post_message(self.ParentLoaded(parent["hyperparameters"], per_node, snapshots))

    def on_fork_dialog_parent_loaded(self, message: ParentLoaded) -> None:
        if message.error:
            self.query_one("#error", Static).update(message.error)
            return
        self.loaded = True
        self.parent_keys = list(message.hyperparameters)
        current = " ".join(f"{key}={value}" for key, value in message.hyperparameters.items())
        self.query_one("#current", Static).update(
            f"parent: {current or 'no hyperparameters'} · {message.gpus} GPU(s)"
        )
        self.query_one("#gpus", Input).placeholder = f"{message.gpus} (as the parent)"
        select = self.query_one("#snapshot", Select)
        intact = [row for row in message.snapshots if row.problem is None]
        self.snapshot_tags = [row.tag for row in intact]
        if not intact:
            select.prompt = "no snapshot"
            select.set_options([])
            select.disabled = True
            self.query_one("#error", Static).update(NO_SNAPSHOTS)
            return
        select.set_options([(_label(row), row.tag) for row in reversed(intact)])
        latest = next((row.tag for row in intact if row.latest), intact[-1].tag)
        select.value = self.preselected if self.preselected in self.snapshot_tags else latest
        self.query_one("#fork", Button).disabled = False

    def action_cancel(self) -> None:
        self.dismiss(None)

    def request(self) -> ForkRequest:
        """The form as a request; :class:`SpecError` for bad values or no snapshot."""
        snapshot = self.query_one("#snapshot", Select).value
        if not self.loaded:
            raise SpecError("still reading the parent's snapshots")
        if not isinstance(snapshot, str) or snapshot not in self.snapshot_tags:
            raise SpecError(NO_SNAPSHOTS if not self.snapshot_tags else "pick a snapshot")
        changes = parse_changes(self.query_one("#changes", Input).value)
        sets, adds = split_changes(self.parent_keys, changes)
        gpus_text = self.query_one("#gpus", Input).value.strip()
        resources = {"gpus": parse_count("GPUs", gpus_text)} if gpus_text else {}
        memo = self.query_one("#memo", Input).value.strip() or None
        return ForkRequest(
            parent=self.session,
            snapshot=snapshot,
            sets=sets,
            adds=adds,
            resources=resources,
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


def _label(row: SnapshotRow) -> str:
    step = row.step if row.step is not None else "?"
    flags = f" · {row.flags}" if row.flags else ""
    return f"{row.tag}  (step {step}){flags}"
