"""Commands on cluster profiles: cluster add, ls, rm, test, trust."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from nsml_hpc.cli.common import Commands, add_json_flag, open_workspace, print_json
from nsml_hpc.errors import ConfigError

if TYPE_CHECKING:
    from nsml_hpc.clusters.check import ClusterReport
    from nsml_hpc.clusters.hostkeys import HostKeyCheck

PROFILE_FLAGS: list[tuple[str, str, dict[str, Any]]] = [
    ("--host", "login node (an alias from ~/.ssh/config works)", {}),
    ("--port", "SSH port (default: ~/.ssh/config's, else 22)", {"type": int}),
    ("--user", "cluster account (default: ~/.ssh/config's, else yours)", {}),
    ("--identity-file", "private key (the SSH agent is tried too)", {}),
    ("--known-hosts", "known_hosts file (default: ~/.ssh/known_hosts)", {}),
    ("--jump-host", "[user@]host[:port][,...] to hop through (like ssh -J)", {}),
    ("--transport", "paramiko (default) or openssh (reuses a ControlMaster)", {}),
    ("--control-path", "openssh: ControlPath of the master connection", {}),
    ("--control-persist", "openssh: how long the master stays up (default 10m)", {}),
    ("--run-root", "run directories on the cluster (relative: under the home)", {}),
    ("--remote-python", "the cluster's Python for jobs (default: its newest python3.X)", {}),
    ("--remote-path", "PATH for Slurm commands on the cluster", {}),
    (
        "--slurm-conf",
        "the cluster's slurm.conf (SLURM_CONF for every Slurm command), for a machine "
        "whose Slurm commands reach several clusters",
        {},
    ),
    ("--connect-timeout", "seconds to wait for the connection (default 15)", {"type": float}),
]


def _profile_data(args: argparse.Namespace) -> dict[str, Any]:
    data: dict[str, Any] = {}
    backend = args.backend or ("ssh" if args.host else "local")
    data["backend"] = backend
    for flag, _, _ in PROFILE_FLAGS:
        key = flag.removeprefix("--").replace("-", "_")
        value = getattr(args, key)
        if value is not None:
            data[key] = value
    defaults = {
        key: getattr(args, key)
        for key in (
            "partition",
            "account",
            "qos",
            "reservation",
            "mail_type",
            "mail_user",
            "exclusive",
            "cpus_per_task",
            "gpu_type",
        )
        if getattr(args, key) is not None
    }
    if args.setup:
        defaults["setup"] = list(args.setup)
    if args.sbatch_args:
        defaults["sbatch_args"] = list(args.sbatch_args)
    if defaults:
        data["defaults"] = defaults
    return data


def cmd_cluster_add(args: argparse.Namespace) -> int:
    """Add a cluster profile (written to clusters.toml beside the config file).

    Example: nsml-hpc cluster add hpc --host login.hpc.example.org --user me
    --run-root /scratch/me/nsml-runs --partition gpu. Then trust its host key
    (nsml-hpc cluster trust hpc) and check it (nsml-hpc cluster test hpc).
    """
    from nsml_hpc.workspace import Workspace

    profile, path, choice = Workspace.add_cluster(
        args.name, _profile_data(args), replace=args.replace
    )
    if args.json:
        print_json(
            {
                "name": profile.name,
                "backend": profile.backend,
                "target": profile.target_text(),
                "file": str(path),
                "choice": choice or None,
            }
        )
        return 0
    print(f"cluster {profile.name}: {profile.backend}, {profile.target_text()} -> {path}")
    if choice:
        print(choice)
    if profile.remote:
        print(
            f"next: nsml-hpc cluster trust {profile.name}  (check the host key), then "
            f"nsml-hpc cluster test {profile.name}"
        )
    return 0


def _profile_rows() -> tuple[list[dict[str, Any]], str]:
    from nsml_hpc.workspace import Workspace

    settings = Workspace.read_settings()
    rows = []
    for name in settings.cluster_names():
        profile = settings.profile(name)
        rows.append(
            {
                "name": name,
                "default": name == settings.default_cluster,
                "backend": profile.backend,
                "target": profile.target_text(),
                "run_root": profile.run_root
                or (str(settings.run_root) if not profile.remote else "~/nsml-runs"),
                "defaults": profile.defaults.to_dict(),
                "configured": name in settings.clusters,
            }
        )
    return rows, settings.default_cluster


def cmd_cluster_ls(args: argparse.Namespace) -> int:
    """List the configured clusters (``local`` is always there); * marks the default."""
    from nsml_hpc.formatting import table

    rows, _ = _profile_rows()
    if args.json:
        print_json(rows)
        return 0
    body = [
        [
            row["name"] + (" *" if row["default"] else ""),
            row["backend"],
            row["target"],
            row["run_root"],
            " ".join(
                f"setup={len(value)} line(s)"
                if key == "setup"
                else f"{key}={' '.join(value) if isinstance(value, list) else value}"
                for key, value in row["defaults"].items()
            )
            or "-",
        ]
        for row in rows
    ]
    print(table(["NAME", "BACKEND", "TARGET", "RUN ROOT", "DEFAULTS"], body))
    return 0


def cmd_cluster_rm(args: argparse.Namespace) -> int:
    """Remove a cluster profile (refused while sessions on it are live, unless --force)."""
    with open_workspace() as workspace:
        path = workspace.remove_cluster(args.name, force=args.force)
    if args.json:
        print_json({"removed": args.name, "file": str(path)})
        return 0
    print(f"removed cluster {args.name} from {path}")
    return 0


def policy_lines(policy: dict[str, Any]) -> list[str]:
    """The effective Slurm clock, one line, and a warning line per unusable site file."""
    if not policy:
        return []
    sites = ", ".join(policy["site_files"]) or "none"
    lines = [
        f"  {'policy':<11} ok   Slurm asked every {policy['floor_seconds']:g} s while sessions "
        f"wait, went silent or are unconfirmed (running: every {policy['confirm_seconds']:g} "
        f"s), {policy['action_floor_seconds']:g} s after an action, at most "
        f"{policy['queries_per_hour']} commands an hour (site policy: {sites})"
    ]
    lines.extend(f"  {'policy':<11} WARN {warning}" for warning in policy["site_warnings"])
    return lines


def render_report(report: ClusterReport) -> str:
    from nsml_hpc.formatting import table

    def line(label: str, ok: bool, text: str) -> str:
        return f"  {label:<11} {'ok  ' if ok else 'FAIL'} {text}"

    lines = [f"cluster {report.name} ({report.backend}, {report.target})"]
    if not report.connected:
        lines.append(line("connection", False, report.error or "failed"))
        return "\n".join([*lines, *policy_lines(report.policy)])
    key = f"; host key {report.host_key}" if report.host_key else ""
    lines.append(line("connection", True, f"first answer in {report.connect_seconds:.2f} s{key}"))
    lines.append(
        line(
            "slurm",
            report.slurm_version is not None,
            report.slurm_version or report.slurm_error or "no version",
        )
    )
    lines.append(
        line(
            "sacct",
            report.sacct_error is None,
            "answers" if report.sacct_error is None else report.sacct_error,
        )
    )
    lines.append(
        line(
            "run root",
            report.run_root_error is None,
            f"{report.run_root} (writable)"
            if report.run_root_error is None
            else report.run_root_error,
        )
    )
    lines.append(
        line(
            "python",
            report.python_error is None,
            f"{report.python} is Python {report.python_version}"
            if report.python_error is None
            else report.python_error,
        )
    )
    if report.python_note:
        lines.append(f"  {'':<11} note {report.python_note}")
    if report.sinfo_error:
        lines.append(line("partitions", False, report.sinfo_error))
    elif report.partitions:
        body = [
            [
                part.name + (" *" if part.is_default else ""),
                f"{part.nodes_usable}/{part.nodes}",
                str(part.gpus_total),
                str(part.gpus_idle),
            ]
            for part in report.partitions
        ]
        lines.append("  partitions (* default; nodes that take jobs / all)")
        rendered = table(["PARTITION", "NODES", "GPUS", "FREE GPUS"], body)
        lines.extend("    " + row for row in rendered.splitlines())
    return "\n".join([*lines, *policy_lines(report.policy)])


def cmd_cluster_test(args: argparse.Namespace) -> int:
    """Check a cluster: connectivity, Slurm version, whether sacct answers, GPUs per partition
    (one sinfo call), the run root and the job interpreter. Exits 4 if anything fails."""
    with open_workspace() as workspace:
        report = workspace.test_cluster(args.name)
    if args.json:
        print_json(report.to_json())
    else:
        print(render_report(report))
    return 0 if report.ok else 4


def _confirm_on_terminal(check: HostKeyCheck) -> bool:
    if not sys.stdin.isatty():
        raise ConfigError(
            f"the host key of {check.name} ({check.key_type} {check.fingerprint}) is new; "
            "compare the fingerprint with the one your cluster publishes, then rerun with --yes"
        )
    answer = input(f"trust it and add it to {check.known_hosts}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def cmd_cluster_trust(args: argparse.Namespace) -> int:
    """Show the host key fingerprint of each server on the way to the cluster and add new
    ones to known_hosts once confirmed (--yes: without asking). A CHANGED key is refused."""
    from nsml_hpc.workspace import Workspace

    def confirm(check: HostKeyCheck) -> bool:
        print(f"{check.name}: {check.key_type} key fingerprint {check.fingerprint}")
        if args.yes:
            return True
        return _confirm_on_terminal(check)

    checks = Workspace.trust_cluster(args.name, confirm)
    if args.json:
        print_json([check.__dict__ for check in checks])
        return 0
    for check in checks:
        if check.status == "trusted":
            print(f"{check.name}: {check.key_type} {check.fingerprint} is already trusted")
        else:
            print(
                f"{check.name}: added {check.key_type} {check.fingerprint} to {check.known_hosts}"
            )
    return 0


def register(commands: Commands) -> None:
    cluster = commands.group("cluster", "Cluster profiles: add, ls, rm, test, trust.")

    add = cluster.add("add", cmd_cluster_add)
    add.add_argument("name", help="the cluster's name in nsml-hpc (--cluster NAME)")
    add.add_argument(
        "--backend", help="ssh (default with --host), local (default otherwise), pyslurm, auto"
    )
    for flag, help_text, extra in PROFILE_FLAGS:
        add.add_argument(flag, help=help_text, **extra)
    defaults = add.add_argument_group("defaults for sessions that name none")
    defaults.add_argument("--partition")
    defaults.add_argument("--account")
    defaults.add_argument("--qos")
    defaults.add_argument("--reservation")
    defaults.add_argument("--mail-type", metavar="TYPES")
    defaults.add_argument("--mail-user", metavar="ADDRESS")
    defaults.add_argument(
        "--exclusive",
        action="store_const",
        const=True,
        help="whole nodes (a session's --no-exclusive shares them)",
    )
    defaults.add_argument(
        "--cpus-per-task",
        metavar="N",
        help="CPU cores per task, for sessions giving neither --cpus-per-task nor --cpus-per-gpu",
    )
    defaults.add_argument(
        "--gpu-type",
        metavar="TYPE",
        help="the GPU type of sessions that ask for GPUs without one (--gpus 2 -> TYPE:2)",
    )
    defaults.add_argument(
        "--sbatch-arg",
        dest="sbatch_args",
        action="append",
        metavar="--OPT=VALUE",
        help="an sbatch option for every job (repeatable; see submit --sbatch-arg)",
    )
    defaults.add_argument(
        "--setup", action="append", metavar="CMD", help="a shell line run in every job first"
    )
    add.add_argument("--replace", action="store_true", help="replace a profile of this name")
    add_json_flag(add)

    ls = cluster.add("ls", cmd_cluster_ls)
    add_json_flag(ls)

    rm = cluster.add("rm", cmd_cluster_rm)
    rm.add_argument("name")
    rm.add_argument("--force", action="store_true", help="even with live sessions on it")
    add_json_flag(rm)

    test = cluster.add("test", cmd_cluster_test)
    test.add_argument("name")
    add_json_flag(test)

    trust = cluster.add("trust", cmd_cluster_trust)
    trust.add_argument("name")
    trust.add_argument(
        "--yes", action="store_true", help="add new host keys without asking (for scripts)"
    )
    add_json_flag(trust)
