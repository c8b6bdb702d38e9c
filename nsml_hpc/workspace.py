"""The one front-end interface: what the CLI, the TUI and notebooks call.

A :class:`Workspace` is a :class:`~nsml_hpc.context.Context` (settings, catalog, backends) with
the operations users have on it. Each operation imports its feature package when it is first
called, so opening a workspace, or printing ``--help``, loads nothing a command does not use.
"""

from __future__ import annotations

from nsml_hpc.context import Context


class Workspace(Context):
    """Settings, the catalog and the clusters' backends, with the users' operations."""


__all__ = ["Workspace"]
