"""Commands on the catalog itself: set it up for a team, upgrade its schema, say who you are
in it (docs/teams.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from nsml_hpc.cli.common import Commands
from nsml_hpc.errors import SpecError


def cmd_setup_team(args: argparse.Namespace) -> int:
    """Set a catalog up for a team (run once by the team's admin; again to add users).

    PostgreSQL: --admin-url URL (a role that may create roles and databases; the URL names the
    catalog's database, created if missing) and --user NAME for each member: each gets a
    database role of that name (peer authentication on this machine, or --password), and
    row-level security lets each change only their own sessions. Prints each member's catalog
    URL. SQLite: --sqlite PATH --group GROUP shares the file with a Unix group.
    """
    from nsml_hpc.workspace import Workspace

    if args.sqlite:
        if args.admin_url or not args.group:
            raise SpecError("--sqlite PATH goes with --group GROUP (and no --admin-url)")
        url = Workspace.share_sqlite_catalog(Path(args.sqlite).expanduser().absolute(), args.group)
        print(f"shared {args.sqlite} with group {args.group}; everyone's config: catalog = {url!r}")
        return 0
    if not args.admin_url:
        raise SpecError("give --admin-url URL (PostgreSQL) or --sqlite PATH --group GROUP")
    setup = Workspace.setup_team(
        args.admin_url, args.user, admins=args.admin, passwords=args.password
    )
    if args.json:
        print(json.dumps(setup.__dict__, indent=2, sort_keys=True))
        return 0
    if setup.applied:
        print(f"schema: {', '.join(setup.applied)}")
    print(
        f"team catalog {setup.database}: members {', '.join(sorted(setup.urls))} "
        f"(role {setup.group}); admins {', '.join(setup.admins)}"
    )
    for user, url in sorted(setup.urls.items()):
        print(f"  {user}: catalog = {url!r}")
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    """Upgrade the catalog's schema to this release's (your own catalog upgrades by itself
    when opened; a team's PostgreSQL catalog is upgraded by its admin: --admin-url URL)."""
    from nsml_hpc.cli.common import open_workspace
    from nsml_hpc.workspace import Workspace

    if args.admin_url:
        applied = Workspace.upgrade_team_catalog(args.admin_url)
    else:
        with open_workspace():  # opening one's own catalog upgrades it
            applied = []
    head = Workspace.schema_head()
    if args.json:
        from nsml_hpc.cli.common import print_json

        print_json({"schema": head, "applied": list(applied)})
        return 0
    print(f"catalog at {head}" + (f" (applied {', '.join(applied)})" if applied else ""))
    return 0


def cmd_whoami(args: argparse.Namespace) -> int:
    """Who you are in the catalog, whether the database enforces ownership, the admins and
    the users with sessions."""
    from nsml_hpc.cli.common import open_workspace

    with open_workspace() as workspace:
        info: dict[str, Any] = workspace.whoami()
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    enforced = "the database enforces ownership" if info["row_security"] else "nsml-hpc checks"
    print(f"you are {info['user']} ({enforced})")
    print(f"admins: {', '.join(info['admins']) or '-'}")
    print(f"users with sessions: {', '.join(info['users']) or '-'}")
    return 0


def register(commands: Commands) -> None:
    group = commands.group("catalog", "The catalog itself: team set-up, schema upgrade, whoami.")
    setup = group.add("setup-team", cmd_setup_team)
    setup.add_argument("--admin-url", help="PostgreSQL URL of an admin role and the catalog DB")
    setup.add_argument(
        "--user", action="append", default=[], metavar="NAME", help="a member (repeatable)"
    )
    setup.add_argument(
        "--admin",
        action="append",
        default=[],
        metavar="NAME",
        help="a member who may act on everyone's sessions (repeatable)",
    )
    setup.add_argument(
        "--password",
        action="store_true",
        help="give each new member a generated password (printed once) instead of peer auth",
    )
    setup.add_argument("--sqlite", metavar="PATH", help="share a SQLite catalog file instead")
    setup.add_argument("--group", help="the Unix group to share the SQLite catalog with")
    setup.add_argument("--json", action="store_true")

    upgrade = group.add("upgrade", cmd_upgrade)
    upgrade.add_argument("--admin-url", help="a team catalog's admin URL (PostgreSQL)")
    upgrade.add_argument("--json", action="store_true", help="print the schema as JSON")

    whoami = group.add("whoami", cmd_whoami)
    whoami.add_argument("--json", action="store_true")
