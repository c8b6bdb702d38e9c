"""The Textual TUI, shipped as ``nsml_hpc.tui`` (``nsml-hpc tui``). Nothing in the headless
core imports this package; like the CLI, it reaches the library only through
:class:`nsml_hpc.workspace.Workspace` (the rule is in that module's docstring)."""

from __future__ import annotations

from .app import NsmlApp, nsml_app

__all__ = ["NsmlApp", "nsml_app", "run_tui"]


def run_tui(*, open_session: str | None = None) -> None:
    """Open the workspace and run the TUI in this terminal until the user quits."""
    from nsml_hpc.workspace import Workspace

    with Workspace.open() as workspace:
        NsmlApp(workspace, open_session=open_session).run()
