"""Commands on snapshots: model ls/rm/pin/unpin/pull/du, fork, gc."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nsml_hpc.cli.common import (
    Commands,
    add_json_flag,
    add_preemption_flags,
    add_resource_flags,
    open_workspace,
    preemption_given,
    print_json,
    resources_given,
    sync_quietly,
    warn,
)
from nsml_hpc.errors import SpecError
from nsml_hpc.formatting import format_bytes

if TYPE_CHECKING:
    from nsml_hpc.snapshots.gc import GcResult
    from nsml_hpc.workspace import Workspace


def cmd_model_ls(args: argparse.Namespace) -> int:
    """List a session's snapshots: tag, step, metrics at save time, size, created, flags."""
    from nsml_hpc.formatting import format_metrics, format_time, table

    with open_workspace() as workspace:
        snapshots = workspace.snapshots(args.session)
    if args.json:
        print_json([row.to_json() for row in snapshots])
        return 0
    if not snapshots:
        print(f"{args.session} has no snapshots (the script saves them with nsml_hpc.save)")
        return 0
    body = [
        [
            row.tag,
            "-" if row.step is None else str(row.step),
            format_metrics(row.metrics, 48) or "-",
            format_bytes(row.bytes),
            format_time(row.created_at),
            row.flags or "-",
        ]
        for row in snapshots
    ]
    print(table(["TAG", "STEP", "METRICS", "SIZE", "CREATED", "FLAGS"], body))
    for row in snapshots:
        if row.problem:
            warn(f"snapshot {args.session}:{row.tag} is damaged ({row.problem})")
    return 0


def cmd_model_rm(args: argparse.Namespace) -> int:
    """Delete one snapshot (never a pinned or forked-from one, nor a live session's latest)."""
    with open_workspace() as workspace:
        row = workspace.remove_snapshot(args.session, args.tag)
    if args.json:
        print_json({"session": args.session, "deleted": row.tag, "bytes": row.bytes})
        return 0
    print(f"deleted {args.session}:{row.tag} ({format_bytes(row.bytes)})")
    return 0


def cmd_model_pin(args: argparse.Namespace) -> int:
    """Pin a snapshot: gc never deletes it, and model rm refuses to."""
    with open_workspace() as workspace:
        tag = workspace.pin_snapshot(args.session, args.tag, pinned=True)
    if args.json:
        print_json({"session": args.session, "tag": tag, "pinned": True})
        return 0
    print(f"pinned {args.session}:{tag}")
    return 0


def cmd_model_unpin(args: argparse.Namespace) -> int:
    """Unpin a snapshot: the retention policies apply to it again."""
    with open_workspace() as workspace:
        tag = workspace.pin_snapshot(args.session, args.tag, pinned=False)
    if args.json:
        print_json({"session": args.session, "tag": tag, "pinned": False})
        return 0
    print(f"unpinned {args.session}:{tag}")
    return 0


def cmd_model_pull(args: argparse.Namespace) -> int:
    """Copy a snapshot folder to DEST on this machine (through the backend, so over SSH too)."""
    with open_workspace() as workspace:
        target = workspace.pull_snapshot(args.session, args.tag, Path(args.dest))
    if args.json:
        print_json({"session": args.session, "selector": args.tag, "path": str(target)})
        return 0
    print(f"pulled {args.session}:{args.tag} -> {target}")
    return 0


def cmd_model_du(args: argparse.Namespace) -> int:
    """Disk used by snapshots, per session and per project."""
    from nsml_hpc.formatting import table

    with open_workspace() as workspace:
        usage = workspace.snapshot_usage(args.project)
    if args.json:
        print_json([item.__dict__ for item in usage])
        return 0
    usage = [item for item in usage if item.snapshots]
    if not usage:
        print("no snapshots")
        return 0
    body = [
        [
            item.session,
            item.state,
            str(item.snapshots),
            format_bytes(item.bytes),
            format_bytes(item.pinned_bytes),
            format_bytes(item.protected_bytes),
        ]
        for item in usage
    ]
    print(table(["SESSION", "STATE", "SNAPSHOTS", "SIZE", "PINNED", "PROTECTED"], body))
    projects: dict[str, list[int]] = {}
    for item in usage:
        totals = projects.setdefault(item.project, [0, 0])
        totals[0] += item.snapshots
        totals[1] += item.bytes
    print()
    rows = [
        [name, str(count), format_bytes(size)] for name, (count, size) in sorted(projects.items())
    ]
    rows.append(
        [
            "(all)",
            str(sum(c for c, _ in projects.values())),
            format_bytes(sum(s for _, s in projects.values())),
        ]
    )
    print(table(["PROJECT", "SNAPSHOTS", "SIZE"], rows))
    return 0


def cmd_fork(args: argparse.Namespace) -> int:
    """Fork a session: new hyperparameters and resources, resuming from one of its snapshots.

    The child reuses SESSION's code snapshot, changes hyperparameters with --set KEY=VALUE
    (--add for a flag the parent did not have) and resources with the resource flags, and
    starts from the chosen snapshot (nsml_hpc.session.resume_from)."""
    from nsml_hpc.snapshots.fork import ForkRequest

    request = ForkRequest(
        parent=args.session,
        snapshot=args.snapshot,
        sets=list(args.set or []),
        adds=list(args.add or []),
        resources=resources_given(args),
        preemption=preemption_given(args),
        memo=args.memo,
    )
    with open_workspace() as workspace:
        if not args.no_sync:
            sync_quietly(workspace)
        forked = workspace.fork(request, dry=args.dry_run)
    if forked.placement:
        print(f"placement: {forked.placement}", file=sys.stderr)
    if forked.script is not None:
        sys.stdout.write(forked.script)
        return 0
    assert forked.submitted is not None
    done = forked.submitted
    if args.json:
        print_json(
            {
                "name": done.name,
                "job_id": done.job_id,
                "cluster": done.cluster,
                "run_dir": str(done.run_dir),
                "parent": forked.parent,
                "snapshot": forked.tag,
                "step": forked.step,
                "changes": {c.key: {"old": c.old, "new": c.new} for c in forked.changes},
            }
        )
        return 0
    print(
        f"forked {done.name} from {forked.parent}:{forked.tag} (step {forked.step}) "
        f"(job {done.job_id}) -> {done.run_dir}"
    )
    for change in forked.changes:
        before = "(new)" if change.old is None else change.old
        print(f"  {change.key}: {before} -> {change.new}")
    return 0


class _CronLog:
    """``gc --cron``: nothing on stdout; every line, with a time, appended to the log file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle: TextIO = path.open("a", encoding="utf-8")

    def __call__(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.handle.write(f"{stamp} {line}\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def cmd_gc(args: argparse.Namespace) -> int:
    """Delete stale snapshots by the retention policies of the config file.

    Without --yes it only prints what it would delete and how much that frees (see
    docs/snapshots.md for the policies). Pinned snapshots, snapshots a session was forked
    from and the latest snapshot of a live session are never deleted."""
    from nsml_hpc.errors import GcBusy
    from nsml_hpc.workspace import Workspace

    if args.scrontab and (args.install_cron is None or not args.print):
        raise SpecError(
            "--scrontab prints the entry for scrontab -e: use it with --install-cron SCHEDULE "
            "--print (nsml-hpc never edits your scrontab)"
        )
    if args.install_cron is not None:
        if args.scrontab:
            sys.stdout.write(Workspace.gc_scrontab(args.install_cron))
            return 0
        line = Workspace.gc_cron_line(args.install_cron)
        if args.print:
            print(line)
            return 0
        replaced = Workspace.install_gc_cron(line)
        print(f"{'replaced' if replaced else 'installed'} crontab line: {line}")
        return 0
    if args.dry_run and (args.yes or args.cron):
        raise SpecError("--dry-run cannot go with --yes or --cron")
    apply = bool(args.yes or args.cron)
    if args.json and args.cron:
        raise SpecError("--json cannot go with --cron (cron logs to the gc log file)")
    policies = Workspace.gc_policies()
    log_file = Workspace.gc_log_file(policies)
    out: Any = _CronLog(log_file) if args.cron else print
    try:
        with open_workspace() as workspace:
            try:
                with workspace.gc_lock():
                    if not args.no_sync:
                        _sync_for_gc(workspace, out)
                    result = workspace.gc(apply=apply, project=args.project, policies=policies)
            except GcBusy as exc:
                if args.cron:
                    out(f"skipped: {exc}")
                    return 0
                raise
        if args.json:
            print_json(_result_json(result, apply, policies.configured))
        else:
            _print_result(result, out, apply, policies.configured)
    finally:
        if isinstance(out, _CronLog):
            out.close()
    if result.errors:
        for error in result.errors:
            print(f"nsml-hpc: error: {error}", file=sys.stderr)
        return 1
    return 0


def _sync_for_gc(workspace: Workspace, out: Any) -> None:
    report = workspace.sync()
    for cluster, error in report.errors.items():
        out(f"warning: cluster {cluster} unreachable; using the catalog's last states ({error})")


def _result_json(result: GcResult, apply: bool, configured: bool) -> dict[str, Any]:
    names = result.names
    deletions = []
    for decision in result.plan.deletions:
        snap = decision.snapshot
        label = f"{names.get(snap.session_id, snap.session_id)}:{snap.tag}"
        if apply and label not in result.deleted:
            continue
        deletions.append({"snapshot": label, "bytes": snap.bytes, "reason": decision.reason})
    return {
        "configured": configured,
        "applied": apply,
        "deletions": deletions,
        "deleted": sorted(result.deleted),
        "freed_bytes": result.freed_bytes if apply else result.plan.freed_bytes,
        "kept": len(result.plan.decisions) - len(deletions),
        "protected": sum(1 for d in result.plan.decisions if d.protected),
        "damaged": dict(result.damaged),
        "skipped": list(result.skipped),
        "notes": list(result.plan.notes),
        "errors": list(result.errors),
    }


def _print_result(result: GcResult, out: Any, apply: bool, configured: bool) -> None:
    if not configured:
        out("no retention policy configured ([gc] in the config file): nothing to delete")
    names = result.names
    for label in result.recovery.finished:
        out(f"finished an interrupted deletion of {label}")
    for label in result.recovery.released:
        out(f"kept {label}: it was saved again after an interrupted deletion")
    for label in result.recovery.cleaned:
        out(f"cleaned up {label}")
    for label, why in sorted(result.damaged.items()):
        out(f"warning: snapshot {label} is damaged ({why}); kept")
    verb = "deleted" if apply else "would delete"
    deletions = result.plan.deletions
    for decision in deletions:
        snap = decision.snapshot
        label = f"{names.get(snap.session_id, snap.session_id)}:{snap.tag}"
        if apply and label not in result.deleted:
            continue
        out(f"{verb} {label}  {format_bytes(snap.bytes)}  ({decision.reason})")
    for skipped in result.skipped:
        out(f"skipped {skipped}")
    for note in result.plan.notes:
        out(f"note: {note}")
    kept = len(result.plan.decisions) - len(deletions)
    protected = sum(1 for d in result.plan.decisions if d.protected)
    if apply:
        out(
            f"deleted {len(result.deleted)} snapshot(s), freed {format_bytes(result.freed_bytes)}; "
            f"kept {len(result.plan.decisions) - len(result.deleted)} ({protected} protected)"
        )
    else:
        out(
            f"would delete {len(deletions)} snapshot(s), "
            f"freeing {format_bytes(result.plan.freed_bytes)}; "
            f"would keep {kept} ({protected} protected). Run with --yes to delete."
        )


TAG_HELP = "a tag, latest, or best:METRIC[:min|max] (as fork --snapshot and load() take)"


def register(commands: Commands) -> None:
    model = commands.group("model", "Snapshots of a session: ls, rm, pin, unpin, pull, du.")
    ls = model.add("ls", cmd_model_ls)
    ls.add_argument("session", help="PROJECT/N")
    add_json_flag(ls)
    rm = model.add("rm", cmd_model_rm)
    rm.add_argument("session", help="PROJECT/N")
    rm.add_argument("tag", help=TAG_HELP)
    add_json_flag(rm)
    for name, func in (("pin", cmd_model_pin), ("unpin", cmd_model_unpin)):
        sub = model.add(name, func)
        sub.add_argument("session", help="PROJECT/N")
        sub.add_argument("tag", help=TAG_HELP)
        add_json_flag(sub)
    pull = model.add("pull", cmd_model_pull)
    pull.add_argument("session", help="PROJECT/N")
    pull.add_argument("tag", help=TAG_HELP)
    pull.add_argument("dest", help="folder to create (or an existing folder to put TAG in)")
    add_json_flag(pull)
    du = model.add("du", cmd_model_du)
    du.add_argument("--project", help="only this project")
    add_json_flag(du)

    fork = commands.add("fork", cmd_fork)
    fork.add_argument("session", help="the parent session, PROJECT/N")
    fork.add_argument(
        "--snapshot",
        default="latest",
        help="latest (default), a tag, or best:METRIC[:min|max]",
    )
    fork.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="change a hyperparameter (repeatable)"
    )
    fork.add_argument(
        "--add", action="append", metavar="KEY=VALUE", help="add a new flag (repeatable)"
    )
    fork.add_argument("--memo", help="a note (default: 'fork of PARENT:TAG')")
    fork.add_argument("--dry-run", action="store_true", help="print the sbatch script only")
    add_json_flag(fork, "print the created session (name, job id, parent snapshot) as JSON")
    fork.add_argument("--no-sync", action="store_true", help=argparse.SUPPRESS)
    add_resource_flags(fork, inherit=True)
    add_preemption_flags(fork)

    gc = commands.add("gc", cmd_gc)
    gc.add_argument("--dry-run", action="store_true", help="only print (the default)")
    gc.add_argument("--yes", action="store_true", help="delete")
    gc.add_argument("--cron", action="store_true", help="delete, quietly; log to the gc log file")
    gc.add_argument("--project", help="only this project")
    gc.add_argument(
        "--install-cron",
        metavar="SCHEDULE",
        help="install a crontab line running 'gc --cron' on SCHEDULE, e.g. '0 3 * * *'",
    )
    gc.add_argument("--print", action="store_true", help="with --install-cron: print the line only")
    gc.add_argument(
        "--scrontab",
        action="store_true",
        help="with --install-cron SCHEDULE --print: print it as a Slurm scrontab entry instead",
    )
    gc.add_argument("--no-sync", action="store_true", help="do not ask Slurm first")
    add_json_flag(gc, "print the plan (or what was deleted) as JSON")
