"""Commands that change an existing session's record: memo."""

from __future__ import annotations

import argparse

from nsml_hpc.cli.common import Commands, open_workspace


def cmd_memo(args: argparse.Namespace) -> int:
    """Set (or with no TEXT, clear) the memo of a session; the TUI's e key does the same."""
    with open_workspace() as workspace:
        workspace.set_memo(args.session, " ".join(args.text))
    print(f"memo of {args.session} {'saved' if args.text else 'cleared'}")
    return 0


def register(commands: Commands) -> None:
    memo = commands.add("memo", cmd_memo)
    memo.add_argument("session", help="PROJECT/N")
    memo.add_argument("text", nargs="*", help="the new memo (one line)")
