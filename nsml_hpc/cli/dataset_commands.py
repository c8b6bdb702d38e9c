"""``nsml-hpc dataset push/ls/show/rm``: datasets pushed once to a cluster, read by sessions
(``submit --dataset NAME[:VERSION] [--stage]``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from nsml_hpc.cli.common import Commands, open_workspace, sync_quietly
from nsml_hpc.formatting import format_bytes


def _cluster(workspace: Any, given: str | None) -> str:
    name = given or workspace.settings.default_cluster
    return str(workspace.settings.profile(name).name)


def cmd_push(args: argparse.Namespace) -> int:
    """Push PATH (a folder or a file) as the next version of dataset NAME on a cluster.

    The copy is immutable (read-only files, a manifest with sizes and checksums) and lives
    under the cluster's dataset root; over SSH only what differs from the newest version is
    sent. Pushing the newest version's exact content again makes no new version.
    """
    from nsml_hpc.cli.progress import UploadBar

    with open_workspace() as workspace:
        cluster = _cluster(workspace, args.cluster)
        bar = UploadBar()
        try:
            pushed = workspace.push_dataset(args.name, Path(args.path), cluster, progress=bar)
        finally:
            bar.finish()
    version = pushed.version
    if args.json:
        from nsml_hpc.cli.common import print_json

        print_json(
            {
                "dataset": version.label,
                "created": pushed.created,
                "files": version.files,
                "bytes": version.bytes,
                "path": version.path,
            }
        )
        return 0
    if not pushed.created:
        print(f"{version.label} already holds exactly this content; no new version")
        return 0
    sent = ""
    if pushed.upload is not None:
        upload = pushed.upload
        sent = f"; sent {upload.sent} file(s), kept {upload.kept} from {args.name}'s last version"
    where = "" if cluster == "local" else f" on {cluster}"
    print(
        f"pushed {version.label}{where}: {version.files} file(s), {format_bytes(version.bytes)}"
        f"{sent} -> {version.path}"
    )
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    """List the datasets of a cluster: every version, its size and the sessions reading it."""
    from nsml_hpc.formatting import format_time, table

    with open_workspace() as workspace:
        if not args.no_sync:
            sync_quietly(workspace)
        versions = workspace.datasets(_cluster(workspace, args.cluster))
    if args.json:
        print(json.dumps([v.to_json() for v in versions], indent=2, sort_keys=True))
        return 0
    if not versions:
        print("no datasets yet: nsml-hpc dataset push NAME PATH")
        return 0
    rows = [
        [
            v.label,
            str(v.files),
            format_bytes(v.bytes),
            format_time(v.created_at),
            v.created_by or "-",
            str(len(v.readers)),
        ]
        for v in versions
    ]
    print(table(["DATASET", "FILES", "SIZE", "PUSHED", "BY", "SESSIONS"], rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Show a dataset's versions (or one, NAME:VERSION) and the sessions that read them."""
    from nsml_hpc.formatting import format_time

    with open_workspace() as workspace:
        if not args.no_sync:
            sync_quietly(workspace)
        versions = workspace.dataset(_cluster(workspace, args.cluster), args.ref)
    if args.json:
        print(json.dumps([v.to_json() for v in versions], indent=2, sort_keys=True))
        return 0
    for v in versions:
        print(f"{v.label}  ({v.cluster})")
        print(f"  path      {v.data_path}")
        print(f"  files     {v.files}, {format_bytes(v.bytes)}  sha256 {v.digest[:16]}…")
        print(f"  pushed    {format_time(v.created_at)} by {v.created_by or '-'} from {v.source}")
        shown = ", ".join(f"{session} ({state})" for session, state in v.readers) or "none"
        print(f"  sessions  {shown}")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    """Delete a dataset version (NAME:VERSION; NAME --all for every version). Refused while a
    session that is not finished reads it."""
    with open_workspace() as workspace:
        sync_quietly(workspace)  # a session that just ended no longer holds the version
        removed = workspace.remove_dataset(
            _cluster(workspace, args.cluster), args.ref, all_versions=args.all
        )
    if args.json:
        from nsml_hpc.cli.common import print_json

        print_json([{"deleted": v.label, "bytes": v.bytes} for v in removed])
        return 0
    for version in removed:
        print(f"deleted {version.label} ({format_bytes(version.bytes)})")
    return 0


def register(commands: Commands) -> None:
    dataset = commands.group("dataset", "Datasets pushed to a cluster once, read by sessions.")
    push = dataset.add("push", cmd_push)
    push.add_argument("name", help="dataset name (letters, digits, '-', '_', '.')")
    push.add_argument("path", help="a folder (or one file) on this machine")
    push.add_argument("--cluster", metavar="NAME", help="cluster (default: default_cluster)")
    push.add_argument("--json", action="store_true", help="print the version as JSON")

    ls = dataset.add("ls", cmd_ls)
    ls.add_argument("--cluster", metavar="NAME", help="cluster (default: default_cluster)")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--no-sync", action="store_true")

    show = dataset.add("show", cmd_show)
    show.add_argument("ref", metavar="NAME[:VERSION]")
    show.add_argument("--cluster", metavar="NAME", help="cluster (default: default_cluster)")
    show.add_argument("--json", action="store_true")
    show.add_argument("--no-sync", action="store_true")

    rm = dataset.add("rm", cmd_rm)
    rm.add_argument("ref", metavar="NAME:VERSION")
    rm.add_argument("--all", action="store_true", help="every version of NAME")
    rm.add_argument("--cluster", metavar="NAME", help="cluster (default: default_cluster)")
    rm.add_argument("--json", action="store_true", help="print what was deleted as JSON")
