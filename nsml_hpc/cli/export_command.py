"""``nsml-hpc export``: the raw metric points of sessions, streamed as CSV, JSON lines or
Parquet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nsml_hpc.cli.common import Commands, open_workspace

SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


def cmd_export(args: argparse.Namespace) -> int:
    """Export every metric point of the sessions (session, step, time, metric, value).

    Streamed in chunks (a session of millions of points never sits in memory), to -o FILE or
    to stdout (csv, jsonl). An existing FILE is refused without --force; a failed export
    leaves no file. The format follows --format, else FILE's suffix, else csv."""
    destination = Path(args.output) if args.output else None
    fmt = args.format or (SUFFIXES.get(destination.suffix.lower()) if destination else None)
    with open_workspace() as workspace:
        count = workspace.export(
            args.sessions,
            fmt or "csv",
            destination,
            metrics=args.metric,
            force=args.force,
            stdout=sys.stdout.buffer,
        )
    if destination is not None:
        print(f"exported {count} point(s) of {len(set(args.sessions))} session(s) -> {destination}")
    return 0


def register(commands: Commands) -> None:
    export = commands.add("export", cmd_export)
    export.add_argument("sessions", nargs="+", help="PROJECT/N ...")
    export.add_argument("--format", choices=("csv", "jsonl", "parquet"), help="default: csv")
    export.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    export.add_argument("--force", action="store_true", help="replace FILE if it exists")
    export.add_argument(
        "--metric", action="append", default=[], help="only this metric (repeatable)"
    )
