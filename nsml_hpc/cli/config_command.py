"""``nsml-hpc config``: the effective settings, and where each one comes from."""

from __future__ import annotations

import argparse
import json

from nsml_hpc.cli.common import Commands, add_json_flag, print_json
from nsml_hpc.errors import SpecError


def cmd_config(args: argparse.Namespace) -> int:
    """Show the effective settings and where each comes from (environment, config file or
    default), and the files nsml-hpc uses.

    With KEY, only that setting's value (for scripts: nsml-hpc config run_root)."""
    from nsml_hpc.formatting import table
    from nsml_hpc.suggest import did_you_mean
    from nsml_hpc.workspace import Workspace

    entries = Workspace.explain_settings()
    if args.key is not None:
        chosen = [entry for entry in entries if entry.key == args.key]
        if not chosen:
            keys = [entry.key for entry in entries]
            raise SpecError(
                f"unknown setting {args.key!r}{did_you_mean(args.key, keys)}; "
                f"settings: {', '.join(keys)}"
            )
        entry = chosen[0]
        if args.json:
            print_json(entry.to_json())
        elif isinstance(entry.value, str):
            print(entry.value)
        else:
            print(json.dumps(entry.value, ensure_ascii=False))
        return 0
    if args.json:
        print_json([entry.to_json() for entry in entries])
        return 0
    rows = [
        [
            entry.key,
            entry.value if isinstance(entry.value, str) else json.dumps(entry.value),
            entry.source,
        ]
        for entry in entries
    ]
    print(table(["SETTING", "VALUE", "FROM"], rows))
    return 0


def register(commands: Commands) -> None:
    config = commands.add("config", cmd_config)
    config.add_argument("key", nargs="?", help="one setting (e.g. run_root, catalog, gc_log)")
    add_json_flag(config)
