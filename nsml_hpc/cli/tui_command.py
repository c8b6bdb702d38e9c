"""``nsml-hpc tui``: the terminal UI. Textual is imported only when the command runs, so the
rest of the CLI (and every headless import) never loads it."""

from __future__ import annotations

import argparse
import importlib

from nsml_hpc.cli.common import Commands


def cmd_tui(args: argparse.Namespace) -> int:
    """Open the terminal UI: sessions, live metrics, logs, snapshots, compare, cluster."""
    tui = importlib.import_module("nsml_hpc.tui")
    tui.run_tui(open_session=args.session)
    return 0


def register(commands: Commands) -> None:
    tui = commands.add("tui", cmd_tui)
    tui.add_argument("session", nargs="?", help="open this session (PROJECT/N) right away")
