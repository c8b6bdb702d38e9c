"""``nsml-hpc``: a thin command line over the library. Each command opens the workspace, calls
library functions, and prints; errors become one line on stderr and a non-zero exit code.

Exit codes: 0 ok, 1 other error, 2 bad input, 3 not found, 4 Slurm/backend, 5 config/catalog,
130 interrupted. ``submit --follow`` exits with the job's own exit code.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from nsml_hpc import __version__
from nsml_hpc.errors import (
    BackendError,
    CatalogError,
    ConfigError,
    NotFoundError,
    NsmlError,
    SpecError,
)
from nsml_hpc.spec import EnvStep, Resources, SessionSpec, parse_count, validate_memory

EXIT_CODES: list[tuple[type[NsmlError], int]] = [
    (SpecError, 2),
    (NotFoundError, 3),
    (BackendError, 4),
    (ConfigError, 5),
    (CatalogError, 5),
    (NsmlError, 1),
]


class UsageError(SpecError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


class _EnvAction(argparse.Action):
    """Collect --setup/--module/--venv/--conda in command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        steps = list(getattr(namespace, "environment", None) or [])
        steps.append(EnvStep(kind=self.dest.removeprefix("env_"), value=str(values)))  # type: ignore[arg-type]
        namespace.environment = steps


def _add_resource_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("resources")
    group.add_argument("--gpus", default="0", help="GPUs per node (--gres=gpu:N)")
    group.add_argument("--nodes", default="1", help="number of nodes")
    group.add_argument("--cpus-per-gpu", help="CPU cores per GPU")
    group.add_argument("--mem", help="memory per node, e.g. 32G")
    group.add_argument("--time", help="time limit, e.g. 4:00:00 or 2-00:00")
    group.add_argument("--partition", help="Slurm partition")
    group.add_argument("--account", help="Slurm account")
    group.add_argument("--qos", help="Slurm QOS")
    group.add_argument("--constraint", help="node features, e.g. a100|h100")


def _resources(args: argparse.Namespace) -> Resources:
    return Resources(
        gpus=parse_count("--gpus", args.gpus) or 0,
        nodes=parse_count("--nodes", args.nodes, minimum=1) or 1,
        cpus_per_gpu=parse_count("--cpus-per-gpu", args.cpus_per_gpu, minimum=1),
        mem=validate_memory(args.mem) if args.mem is not None else None,
        time=args.time,
        partition=args.partition,
        account=args.account,
        qos=args.qos,
        constraint=args.constraint,
    )


def default_project(code_root: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", code_root.name).strip(".-")
    return name[:64] or "default"


# --- commands -------------------------------------------------------------------------------


def cmd_submit(args: argparse.Namespace) -> int:
    """Submit SCRIPT [ARGS...] as a new session."""
    from nsml_hpc.submit import code_root_for, dry_run, prepare, submit
    from nsml_hpc.workspace import Workspace

    steps: list[EnvStep] = list(args.environment or [])
    if sum(step.kind in ("venv", "conda") for step in steps) > 1:
        raise SpecError("give at most one of --venv and --conda")
    script = Path(args.script)
    if not script.is_file():
        raise SpecError(f"script not found: {args.script}")
    code_root = code_root_for(script, Path.cwd())
    spec = SessionSpec(
        project=args.project or default_project(code_root),
        script=script.resolve().relative_to(code_root).as_posix(),
        args=list(args.script_args),
        resources=_resources(args),
        environment=steps,
        memo=args.memo or "",
        cluster=args.cluster,
    )
    workspace = Workspace.open()
    try:
        prepared = prepare(spec, workspace.settings, code_root)
        if args.dry_run:
            sys.stdout.write(dry_run(prepared, workspace.catalog, workspace.settings))
            return 0
        done = submit(
            prepared, workspace.catalog, workspace.settings, workspace.backend_for(args.cluster)
        )
        print(f"submitted {done.name} (job {done.job_id}) -> {done.run_dir}")
        if args.follow:
            return _follow(workspace, done.name)
        return 0
    finally:
        workspace.close()


def _follow(workspace: Any, name: str) -> int:
    from nsml_hpc.actions import follow_logs
    from nsml_hpc.catalog.sessions import get_session

    out = sys.stdout.buffer
    for chunk in follow_logs(workspace, name):
        out.write(chunk)
        out.flush()
    record = get_session(workspace.catalog, name)
    print(f"{name}: {record.state}" + (f" (exit {record.exit_code})" if record.exit_code else ""))
    return 0 if record.state == "COMPLETED" else (record.exit_code or 1)


def _sync_quietly(workspace: Any) -> None:
    from nsml_hpc.actions import sync_now

    report = sync_now(workspace)
    for cluster, error in report.errors.items():
        print(
            f"nsml-hpc: warning: cluster {cluster} unreachable — showing cached data ({error})",
            file=sys.stderr,
        )
    if report.malformed_lines:
        print(
            f"nsml-hpc: warning: skipped {report.malformed_lines} malformed metric/event "
            "line(s); see `show`",
            file=sys.stderr,
        )


def cmd_sync(args: argparse.Namespace) -> int:
    """Ask Slurm about live sessions (one sacct per cluster) and ingest new metrics."""
    from nsml_hpc.actions import sync_now
    from nsml_hpc.workspace import Workspace

    workspace = Workspace.open()
    try:
        report = sync_now(workspace)
    finally:
        workspace.close()
    if args.json:
        print(json.dumps(report.__dict__, indent=2, sort_keys=True))
    else:
        skipped = (
            f", skipped by the poll floor: {', '.join(report.skipped_by_floor)}"
            if report.skipped_by_floor
            else ""
        )
        print(
            f"queried {len(report.queried)} cluster(s){skipped}; {report.state_changes} state "
            f"change(s), {report.new_points} new metric point(s), {report.new_events} event(s), "
            f"{report.malformed_lines} malformed line(s)"
        )
    for cluster, error in report.errors.items():
        print(f"nsml-hpc: error: cluster {cluster}: {error}", file=sys.stderr)
    return 4 if report.errors else 0


def cmd_ps(args: argparse.Namespace) -> int:
    """List sessions: name, state (with pending reason), GPUs, elapsed, last metrics."""
    from nsml_hpc.formatting import format_metrics, table
    from nsml_hpc.slurm.timefmt import format_duration
    from nsml_hpc.views import session_rows
    from nsml_hpc.workspace import Workspace

    workspace = Workspace.open()
    try:
        if not args.no_sync:
            _sync_quietly(workspace)
        rows = session_rows(workspace.catalog, project=args.project, limit=args.limit)
    finally:
        workspace.close()
    if args.json:
        print(json.dumps([row.to_json() for row in rows], indent=2, sort_keys=True))
        return 0
    if not rows:
        print("no sessions yet: nsml-hpc submit SCRIPT")
        return 0
    body = [
        [
            row.name,
            row.state_text,
            str(row.gpus),
            format_duration(row.elapsed_s),
            "-" if row.last_step is None else str(row.last_step),
            format_metrics(row.last_metrics) or "-",
        ]
        for row in rows
    ]
    print(table(["NAME", "STATE", "GPUS", "ELAPSED", "STEP", "METRICS"], body))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Show one session: spec, job ids, state history, events, latest metrics."""
    from nsml_hpc.views import session_detail
    from nsml_hpc.workspace import Workspace

    workspace = Workspace.open()
    try:
        if not args.no_sync:
            _sync_quietly(workspace)
        detail = session_detail(workspace.catalog, args.session)
    finally:
        workspace.close()
    if args.json:
        print(json.dumps(detail, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print(_render_detail(detail))
    return 0


def _render_detail(detail: dict[str, Any]) -> str:
    from nsml_hpc.formatting import format_metrics, format_time
    from nsml_hpc.slurm.timefmt import format_duration

    spec = detail["spec"]
    res = {key: value for key, value in spec["resources"].items() if value not in (None, 0)}
    lines = [
        f"session     {detail['name']}  ({detail['cluster']}, user {detail['user']})",
        f"state       {detail['state_text']}",
        f"command     {spec['script']} {' '.join(spec['args'])}".rstrip(),
        f"hyperparams {json.dumps(detail['hyperparameters'], ensure_ascii=False)}",
        f"resources   {', '.join(f'{k}={v}' for k, v in res.items())}",
        f"run dir     {detail['run_dir']}",
        f"submitted   {format_time(detail['submitted_at'])}"
        f"   started {format_time(detail['started_at'])}"
        f"   ended {format_time(detail['ended_at'])}"
        f"   elapsed {format_duration(detail['elapsed_s'])}",
        f"metrics     step {detail['last_step']}: "
        f"{format_metrics(detail['last_metrics'], 200) or '-'}"
        f"  ({detail['metric_points']} points,"
        f" {detail['malformed_metric_lines']} malformed lines)",
    ]
    if detail["memo"]:
        lines.append(f"memo        {detail['memo']}")
    lines.append("jobs")
    for job in detail["jobs"]:
        lines.append(
            f"  {job['job_id']:<10} {job['state']:<14} exit {job['exit_code']}  "
            f"nodes {job['node_list'] or '-'}"
        )
    lines.append("state history")
    for change in detail["state_history"]:
        reason = f" ({change['reason']})" if change["reason"] else ""
        lines.append(f"  {format_time(change['at'])}  {change['state']}{reason}")
    lines.append("events")
    for event in detail["events"]:
        extra = {k: v for k, v in event.items() if k not in ("at", "event", "job_id")}
        lines.append(
            f"  {format_time(event['at'])}  {event['event']:<10} job {event['job_id']}  "
            + " ".join(f"{k}={v}" for k, v in sorted(extra.items()) if v is not None)
        )
    return "\n".join(lines)


def cmd_logs(args: argparse.Namespace) -> int:
    """Print the session's Slurm output; -f follows it until the session ends."""
    from nsml_hpc.actions import follow_logs, read_logs
    from nsml_hpc.workspace import Workspace

    workspace = Workspace.open()
    out = sys.stdout.buffer
    try:
        chunks = (
            follow_logs(workspace, args.session)
            if args.follow
            else read_logs(workspace, args.session)
        )
        for chunk in chunks:
            out.write(chunk)
            out.flush()
    finally:
        workspace.close()
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Cancel a pending or running session."""
    from nsml_hpc.actions import stop_session
    from nsml_hpc.workspace import Workspace

    workspace = Workspace.open()
    try:
        job_ids = stop_session(workspace, args.session)
    finally:
        workspace.close()
    print(f"cancel requested for {args.session} (job {', '.join(job_ids)})")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    """Remove a finished session from the catalog; --purge also deletes its run directory."""
    from nsml_hpc.actions import remove_session
    from nsml_hpc.workspace import Workspace

    workspace = Workspace.open()
    try:
        removed = remove_session(workspace, args.session, purge=args.purge)
    finally:
        workspace.close()
    suffix = f"; deleted {removed.run_dir}" if removed.purged else f"; kept {removed.run_dir}"
    print(f"removed {removed.name}{suffix}")
    return 0


# --- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nsml-hpc", description="NSML for Slurm: train, follow, compare.")
    parser.add_argument("--version", action="version", version=f"nsml-hpc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name, help=(func.__doc__ or "").splitlines()[0], description=func.__doc__
        )
        sub.set_defaults(func=func)
        return sub

    submit = add("submit", cmd_submit)
    _add_resource_flags(submit)
    env = submit.add_argument_group("environment (in command-line order)")
    env.add_argument(
        "--setup",
        dest="env_setup",
        action=_EnvAction,
        metavar="CMD",
        help="a shell line to run in the job first (repeatable)",
    )
    env.add_argument(
        "--module",
        dest="env_module",
        action=_EnvAction,
        metavar="M",
        help="module load M (repeatable)",
    )
    env.add_argument(
        "--venv", dest="env_venv", action=_EnvAction, metavar="DIR", help="activate this virtualenv"
    )
    env.add_argument(
        "--conda", dest="env_conda", action=_EnvAction, metavar="ENV", help="conda activate ENV"
    )
    submit.add_argument("--project", help="project name (default: the code folder's name)")
    submit.add_argument("--memo", help="a note to remember this session by")
    submit.add_argument("--cluster", default="local", help=argparse.SUPPRESS)
    submit.add_argument("--dry-run", action="store_true", help="print the sbatch script only")
    submit.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="stream the output until the session ends; exit with its code",
    )
    submit.add_argument("script", help="training script (.py, or an executable)")
    submit.add_argument(
        "script_args", nargs=argparse.REMAINDER, help="arguments passed to the script unchanged"
    )
    submit.set_defaults(environment=[])

    sync_cmd = add("sync", cmd_sync)
    sync_cmd.add_argument("--json", action="store_true")

    ps = add("ps", cmd_ps)
    ps.add_argument("--project", help="only this project")
    ps.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    ps.add_argument("--json", action="store_true")
    ps.add_argument("--no-sync", action="store_true", help="show the catalog without asking Slurm")

    show = add("show", cmd_show)
    show.add_argument("session", help="PROJECT/N")
    show.add_argument("--json", action="store_true")
    show.add_argument("--no-sync", action="store_true")

    logs = add("logs", cmd_logs)
    logs.add_argument("session", help="PROJECT/N")
    logs.add_argument("-f", "--follow", action="store_true")

    stop = add("stop", cmd_stop)
    stop.add_argument("session", help="PROJECT/N")

    rm = add("rm", cmd_rm)
    rm.add_argument("session", help="PROJECT/N")
    rm.add_argument("--purge", action="store_true", help="also delete the run directory")
    return parser


def _exit_code(error: NsmlError) -> int:
    for kind, code in EXIT_CODES:
        if isinstance(error, kind):
            return code
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except NsmlError as error:
        print(f"nsml-hpc: error: {error}", file=sys.stderr)
        return _exit_code(error)
    except KeyboardInterrupt:
        print("nsml-hpc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
