"""``nsml-hpc set``: change a running session's hyperparameters."""

from __future__ import annotations

import argparse

from nsml_hpc.cli.common import Commands, open_workspace, sync_quietly


def cmd_set(args: argparse.Namespace) -> int:
    """Change hyperparameters of a running session: nsml-hpc set mnist/3 lr=0.01

    The change is written into the session's run directory (over SSH too) and the job takes it
    at its next look (nsml_hpc.hparam(), session.hyperparameters, or report() with a callback
    registered), at most NSML_HPC_HPARAM_INTERVAL seconds (default 2) after it was written;
    `show` lists the change with the step the job took it at. Only hyperparameters the
    session has (or new ones named with --add), with the current value's type, and only while
    the session is not finished.
    """
    with open_workspace() as workspace:
        if not args.no_sync:
            sync_quietly(workspace)
        if args.cluster is not None:
            from nsml_hpc.cli.session_commands import check_session_cluster

            check_session_cluster(workspace, args.session, args.cluster)
        done = workspace.set_hyperparameters(args.session, args.changes, adds=args.add)
    if args.json:
        from nsml_hpc.cli.common import print_json

        print_json(
            {
                "session": done.session,
                "changes": done.changes,
                "previous": {name: done.previous.get(name) for name in done.changes},
                "version": done.version,
            }
        )
        return 0
    moves = ", ".join(
        f"{name} {done.previous.get(name)!r} -> {value!r}"
        for name, value in sorted(done.changes.items())
    )
    print(
        f"set {done.session}: {moves} (version {done.version}); the job takes it at its next "
        f"look, within {done.interval:g} s"
    )
    return 0


def register(commands: Commands) -> None:
    hparam = commands.add("set", cmd_set, formatter_class=argparse.RawDescriptionHelpFormatter)
    hparam.add_argument("session", help="PROJECT/N")
    hparam.add_argument("changes", nargs="*", metavar="KEY=VALUE", help="new values")
    hparam.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a hyperparameter the session does not have yet (repeatable)",
    )
    hparam.add_argument("--cluster", metavar="NAME", help="check that the session is on it")
    hparam.add_argument("--json", action="store_true", help="print the change as JSON")
    hparam.add_argument("--no-sync", action="store_true", help="do not ask Slurm first")
