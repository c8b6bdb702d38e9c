"""Commands on sessions: submit, sync, ps, show, logs, stop, rm."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nsml_hpc.cli.common import (
    Commands,
    about_cluster,
    add_cluster_flag,
    add_environment_flags,
    add_json_flag,
    add_launch_flags,
    add_preemption_flags,
    add_resource_flags,
    open_workspace,
    prepare_submission,
    print_json,
    read_workspace,
    script_spec,
    sync_quietly,
)
from nsml_hpc.cli.run_options import add_run_options, apply_run_options
from nsml_hpc.errors import NotFoundError

if TYPE_CHECKING:
    from nsml_hpc.sessions.views import SessionRow
    from nsml_hpc.workspace import Reader, Workspace


def cmd_submit(args: argparse.Namespace) -> int:
    """Submit SCRIPT [ARGS...] as a new session (on --cluster NAME, default: local)."""
    from nsml_hpc.cli.progress import UploadBar
    from nsml_hpc.errors import SpecError

    if args.json and args.follow:  # JSON on stdout stays one document, not the job's output
        raise SpecError("--json and --follow do not go together; follow with: nsml-hpc logs -f")
    with open_workspace() as workspace:
        spec, code_root = script_spec(args, workspace)
        spec = apply_run_options(args, spec, workspace)
        prepared = prepare_submission(workspace, spec, code_root)
        if args.dry_run:
            sys.stdout.write(workspace.dry_run(prepared))
            return 0
        bar = UploadBar()
        try:
            done = workspace.submit(prepared, progress=bar)
        finally:
            bar.finish()
        if args.json:
            print_json(
                {
                    "name": done.name,
                    "job_id": done.job_id,
                    "cluster": done.cluster,
                    "run_dir": str(done.run_dir),
                }
            )
        else:
            where = "" if done.cluster == "local" else f" on {done.cluster}"
            print(f"submitted {done.name} (job {done.job_id}){where} -> {done.run_dir}")
        return follow_to_the_end(workspace, done.name) if args.follow else 0


def follow_to_the_end(workspace: Workspace, name: str) -> int:
    """Stream the session's output until it ends (its state on stderr as it changes); the
    exit code says how it ended. Ctrl-C stops following, not the session."""
    from nsml_hpc.cli.follow import Follower

    follower = Follower(name)
    try:
        follower.run(workspace)
    except KeyboardInterrupt:
        return follower.interrupted()
    record = workspace.session(name)
    exit_note = f" (exit {record.exit_code})" if record.exit_code else ""
    print(f"{name}: {record.state}{exit_note}")
    return 0 if record.state == "COMPLETED" else (record.exit_code or 1)


def cmd_sync(args: argparse.Namespace) -> int:
    """Ingest new metrics and events, and ask Slurm about your live sessions (one sacct per
    cluster) as soon as the poll floor allows."""
    with open_workspace() as workspace:
        clusters = [workspace.settings.profile(args.cluster).name] if args.cluster else None
        report = workspace.sync(clusters, refresh=True)
    if args.json:
        print_json(report.__dict__)
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
        for line in report.disagreements:  # session, its events' end, accounting's (which won)
            print(f"disagreement: {line}")
    for cluster, why in report.degraded.items():
        print(f"nsml-hpc: warning: {about_cluster(cluster, why)}", file=sys.stderr)
    for cluster, error in report.errors.items():
        print(f"nsml-hpc: error: {about_cluster(cluster, error)}", file=sys.stderr)
    return 4 if report.errors else 0


def cmd_ps(args: argparse.Namespace) -> int:
    """List your sessions of every cluster (or --cluster NAME) with their name, state (and
    pending reason), GPUs, elapsed time and last metrics.

    Syncs your sessions first (one sacct call per cluster). --user NAME or --all-users: the
    team's on a shared catalog (with a USER column). --sweep PROJECT/sweep-N lists one sweep;
    --column NAME (repeatable) adds a hyperparameter, or memo, user, project, cluster."""
    from nsml_hpc.formatting import format_metrics, table
    from nsml_hpc.slurm.timefmt import format_duration
    from nsml_hpc.workspace import Workspace

    settings = Workspace.read_settings()
    cluster = settings.profile(args.cluster).name if args.cluster else None
    if args.stop_idle is not None:
        with open_workspace() as workspace:
            _check_owner(workspace, args)
            if not args.no_sync:
                sync_quietly(workspace, [cluster] if cluster else None)
            _stop_idle(workspace, args.stop_idle)
            rows, shared = _listing(args, cluster)(workspace)
    else:
        rows, shared = read_workspace(
            _listing(args, cluster),
            settings=settings,
            sync=not args.no_sync,
            clusters=[cluster] if cluster else None,
            before=lambda workspace: _check_owner(workspace, args),
        )
    idle_after = settings.idle_gpu_seconds
    columns = list(dict.fromkeys(args.column))
    _check_columns(columns, rows)
    if args.json:
        print_json([row.to_json() for row in rows])
        return 0
    if not rows:
        print("no sessions yet: nsml-hpc submit SCRIPT")
        return 0
    clusters = {row.cluster for row in rows}
    many = len(clusters) > 1 or clusters != {"local"}
    multi_node = any(row.nodes > 1 for row in rows)
    body = [
        [
            row.name,
            *([row.owner] if shared else []),
            *([row.cluster] if many else []),
            row.state_text + (f" [requeued {row.requeues}x]" if row.requeues else ""),
            row.gpus_text,
            *([_nodes_cell(row)] if multi_node else []),
            format_duration(row.elapsed_s),
            _gpu_cell(row, idle_after),
            "-" if row.last_step is None else str(row.last_step),
            *(_cell(row.column(name)) for name in columns),
            format_metrics(row.last_metrics) or "-",
        ]
        for row in rows
    ]
    headers = [
        "NAME",
        *(["USER"] if shared else []),
        *(["CLUSTER"] if many else []),
        *["STATE", "GPUS"],
        *(["NODES"] if multi_node else []),
        *["ELAPSED", "GPU%"],
    ]
    extra = [name.upper() for name in columns]
    print(table([*headers, "STEP", *extra, "METRICS"], body))
    return 0


def _check_owner(reader: Reader, args: argparse.Namespace) -> None:
    """``--user``/``--all-users`` checked before anything else is done."""
    reader.owner_for(args.user, args.all_users)


def _listing(
    args: argparse.Namespace, cluster: str | None
) -> Callable[[Reader], tuple[list[SessionRow], bool]]:
    """What ``ps`` reads: the rows and whether the catalog is shared."""

    def read(reader: Reader) -> tuple[list[SessionRow], bool]:
        owner = reader.owner_for(args.user, args.all_users)
        rows = reader.sessions(
            project=args.project, cluster=cluster, limit=args.limit, owner=owner, sweep=args.sweep
        )
        return rows, reader.shared()

    return read


def _nodes_cell(row: SessionRow) -> str:
    """``duo[1-2]: duo1 running, duo2 running`` for a multi-node session, ``-`` otherwise."""
    if row.nodes == 1:
        return "-"
    listed = row.node_list or f"{row.nodes} nodes"
    return f"{listed}: {row.node_summary}" if row.node_summary else listed


def add_user_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--user", metavar="NAME", help=f"{what} of this user (shared catalogs)")
    parser.add_argument(
        "--all-users", action="store_true", help=f"{what} of every user (shared catalogs)"
    )


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    import json

    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:39] + "…"


def _check_columns(columns: list[str], rows: list[SessionRow]) -> None:
    """A ``--column`` must name a hyperparameter some listed session has, or a row field."""
    from nsml_hpc.errors import SpecError
    from nsml_hpc.sessions.views import ROW_COLUMNS
    from nsml_hpc.suggest import did_you_mean

    known = {*ROW_COLUMNS, *(key for row in rows for key in row.hyperparameters)}
    for name in columns:
        if name not in known and rows:
            raise SpecError(
                f"no listed session has a hyperparameter {name!r}{did_you_mean(name, known)}"
            )


def _gpu_cell(row: SessionRow, idle_after: float) -> str:
    """Last utilisation, or the idle flag once the GPUs sat at 0 % past the threshold."""
    from nsml_hpc.slurm.timefmt import format_duration

    if row.gpu_util is None:
        return "-"
    if row.gpu_idle_s >= idle_after:
        return f"IDLE {format_duration(row.gpu_idle_s)}"
    return f"{row.gpu_util:.0f}"


def _stop_idle(workspace: Workspace, text: str) -> None:
    from nsml_hpc.job.spec import time_limit_minutes
    from nsml_hpc.slurm.timefmt import format_duration

    for name, idle_s in workspace.stop_idle(time_limit_minutes(text) * 60):
        print(f"cancel requested for {name}: its GPUs sat idle for {format_duration(idle_s)}")


def cmd_show(args: argparse.Namespace) -> int:
    """Show one session: spec, job ids, state history, events, latest metrics."""
    if args.cluster is not None:
        with open_workspace() as workspace:
            check_session_cluster(workspace, args.session, args.cluster)
            if not args.no_sync:
                sync_quietly(workspace)
            detail = workspace.show(args.session)
            note = None if args.json else workspace.run_dir_note(args.session)
    else:
        detail, note = read_workspace(
            lambda reader: (
                reader.show(args.session),
                None if args.json else reader.run_dir_note(args.session),
            ),
            sync=not args.no_sync,
        )
    if args.json:
        print_json(detail)  # control and bidi characters stay escaped
    else:
        from nsml_hpc.formatting import printable, printable_tree

        print(render_detail(printable_tree(detail)))
        if note:
            print(f"note        {printable(note)}")
    return 0


def render_detail(detail: dict[str, Any]) -> str:
    import json

    from nsml_hpc.formatting import format_metrics, format_time
    from nsml_hpc.slurm.timefmt import format_duration

    spec = detail["spec"]
    lines = [
        f"session     {detail['name']}  ({detail['cluster']}, user {detail['user']})",
        f"state       {detail['state_text']}",
        f"command     {spec['script']} {' '.join(spec['args'])}".rstrip(),
        f"hyperparams {json.dumps(detail['hyperparameters'], ensure_ascii=False)}",
        resources_line(spec["resources"], detail["allocation"]),
        f"run dir     {detail['run_dir']}",
        f"submitted   {format_time(detail['submitted_at'])}"
        f"   started {format_time(detail['started_at'])}"
        f"   ended {format_time(detail['ended_at'])}"
        f"   elapsed {format_duration(detail['elapsed_s'])}",
        f"metrics     step {detail['last_step']}: "
        f"{format_metrics(detail['last_metrics'], 200) or '-'}"
        f"  ({detail['metric_points']} points,"
        f" {detail['malformed_metric_lines']} malformed lines"
        f"{_non_finite_note(detail)})",
    ]
    lines.extend(render_node_lines(detail))
    for problem in detail.get("ingest_problems", []):
        where = f"line {problem['line']}" if problem["line"] else "file"
        lines.append(f"refused     {problem['file']} {where}: {problem['problem']}")
    if detail["metric_sources"]:
        captured = ", ".join(f"{k} ({v})" for k, v in sorted(detail["metric_sources"].items()))
        lines.append(f"captured    {captured}")
    lines.extend(render_issue12_lines(detail))
    if detail["gpu_util"] is not None:
        lines.append(
            f"gpu         {detail['gpu_util']:.0f} % last sample"
            + (
                f", idle for {format_duration(detail['gpu_idle_s'])}"
                if detail["gpu_idle_s"]
                else ""
            )
        )
    if detail["memo"]:
        lines.append(f"memo        {detail['memo']}")
    lines.extend(render_snapshot_lines(detail))
    lines.append("jobs (one line per run: a requeued job id runs again)")
    for job in detail["runs"]:
        lines.append(
            f"  {job['job_id']:<10} run {job['run']}  {job['state']:<19} "
            f"exit {'-' if job['exit_code'] is None else job['exit_code']}  "
            f"nodes {job['node_list'] or '-'}  started {format_time(job['started_at'])}"
        )
    lines.append("state history")
    for change in detail["state_history"]:
        reason = f" ({change['reason']})" if change["reason"] else ""
        lines.append(f"  {format_time(change['at'])}  {change['state']}{reason}")
    lines.append("events")
    for event in detail["events"]:
        extra = {k: v for k, v in event.items() if k not in ("at", "event", "job_id")}
        details = " ".join(f"{k}={v}" for k, v in sorted(extra.items()) if v is not None)
        lines.append(
            f"  {format_time(event['at'])}  {event['event']:<10} job {event['job_id']}  {details}"
        )
    return "\n".join(lines)


# Requests Slurm's allocation (the resources line once synced) does not show.
REQUEST_ONLY = (
    "ntasks_per_node",
    "cpus_per_task",
    "exclusive",
    "reservation",
    "dependency",
    "mail_type",
    "mail_user",
    "sbatch_args",
)


def render_node_lines(detail: dict[str, Any]) -> list[str]:
    """The requests the allocation does not show, the launch mode, what the session waits
    for, and each node's state."""
    from nsml_hpc.sessions.views import shown_resources

    spec = detail["spec"]
    lines: list[str] = []
    asked = shown_resources(spec["resources"])
    extra = {key: asked[key] for key in REQUEST_ONLY if key in asked}
    if spec["resources"].get("gpu_type") and "gpus" in asked:
        extra = {"gpus": asked["gpus"], **extra}  # Slurm's count does not name the type
    if detail.get("allocation") is not None and extra:
        lines.append(f"requests    {', '.join(f'{k}={v}' for k, v in extra.items())}")
    launch = spec.get("launch", "plain")
    if launch != "plain" or detail.get("nodes", 1) > 1:
        nodes = f"{detail.get('nodes', 1)} node(s)"
        listed = f": {detail['node_list']}" if detail.get("node_list") else ""
        lines.append(f"launch      {launch} on {nodes}{listed}")
    if spec.get("after"):
        lines.append(
            f"after       {', '.join(spec['after'])} "
            f"(--dependency={spec['resources'].get('dependency') or '-'})"
        )
    for node in detail.get("node_states", []):
        devices = node["cuda_visible_devices"] or "-"
        lines.append(
            f"  node {'-' if node['node'] is None else node['node']:<3} {node['host']:<16} "
            f"{node['state']:<10} {node['tasks']} task(s)  CUDA_VISIBLE_DEVICES={devices}"
        )
    return lines


def _non_finite_note(detail: dict[str, Any]) -> str:
    count = detail.get("non_finite_values") or 0
    return f", {count} NaN/inf value(s) kept as gaps" if count else ""


def render_issue12_lines(detail: dict[str, Any]) -> list[str]:
    """The dataset read, printed-metric capture, and hyperparameters changed while running."""
    from nsml_hpc.cli.run_options import detail_lines

    return detail_lines(detail)


def resources_line(asked: dict[str, Any], allocation: dict[str, Any] | None) -> str:
    """What Slurm gave the job (read back by sync); what was asked only until Slurm said."""
    from nsml_hpc.sessions.views import shown_resources

    if allocation is None:
        shown = shown_resources(asked)
        return f"resources   {', '.join(f'{k}={v}' for k, v in shown.items())}  (as asked)"
    names = ("partition", "account", "qos", "gpus", "time_limit", "nodes")
    return "resources   " + ", ".join(
        f"{name}={allocation[name]}" for name in names if allocation.get(name) is not None
    )


def render_snapshot_lines(detail: dict[str, Any]) -> list[str]:
    """Lineage, snapshots, requeues and job runs for ``show``."""
    from nsml_hpc.formatting import format_metrics, format_time

    lines: list[str] = []
    parent = detail["lineage"]["parent"]
    if parent is not None:
        changed = " ".join(f"{k}={v}" for k, v in sorted(parent["overrides"].items()))
        lines.append(
            f"forked from {parent['session']}:{parent['snapshot']} (step {parent['step']})"
            + (f", changed {changed}" if changed else "")
        )
    children = detail["lineage"]["children"]
    if children:
        shown = ", ".join(f"{c['session']} (from {c['snapshot']})" for c in children)
        lines.append(f"forks       {shown}")
    snaps = detail["snapshots"]
    latest = snaps["latest"]
    latest_text = (
        f"; latest {latest['tag']} (step {latest['step']}) "
        f"{format_metrics(latest['metrics'], 80)}".rstrip()
        if latest
        else ""
    )
    lines.append(
        f"snapshots   {snaps['count']} ({snaps['bytes'] / 2**20:.1f} MiB, {snaps['pinned']} "
        f"pinned, {snaps['damaged']} damaged){latest_text}"
    )
    if detail["requeues"] or len(detail["job_runs"]) > 1:
        lines.append(
            f"requeues    {detail['requeues']}; {detail['superseded_points']} metric point(s) "
            "of lost tails superseded by resumed runs"
        )
        lines.append("job runs")
        for run in detail["job_runs"]:
            resume = (
                f"  resumed from {run['resume_tag']} (step {run['resume_step']})"
                if run["resume_tag"]
                else ""
            )
            lines.append(
                f"  {run['job_id']:<10} run {run['restart_count']}  "
                f"{format_time(run['started_at'])}  {run['outcome'] or 'running'}"
                f"  exit {run['exit_code']}{resume}"
            )
    return lines


def cmd_logs(args: argparse.Namespace) -> int:
    """Print the session's Slurm output; -f follows it until the session ends, saying on
    stderr what a pending session waits for (Ctrl-C stops following, not the session)."""
    from nsml_hpc.cli.follow import Follower

    out = sys.stdout.buffer
    with open_workspace() as workspace:
        check_session_cluster(workspace, args.session, args.cluster)
        if args.follow:
            follower = Follower(args.session)
            try:
                follower.run(workspace)
            except KeyboardInterrupt:
                return follower.interrupted()
            return 0
        for chunk in workspace.read_logs(args.session):
            out.write(chunk)
            out.flush()
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Cancel a pending or running session."""
    with open_workspace() as workspace:
        check_session_cluster(workspace, args.session, args.cluster)
        job_ids = workspace.stop(args.session)
    if args.json:
        print_json({"session": args.session, "cancelled": job_ids})
        return 0
    print(f"cancel requested for {args.session} (job {', '.join(job_ids)})")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    """Remove a finished session from the catalog; --purge also deletes its run directory."""
    with open_workspace() as workspace:
        check_session_cluster(workspace, args.session, args.cluster)
        removed = workspace.remove(args.session, purge=args.purge)
    if args.json:
        print_json(
            {"session": removed.name, "run_dir": str(removed.run_dir), "purged": removed.purged}
        )
        return 0
    suffix = f"; deleted {removed.run_dir}" if removed.purged else f"; kept {removed.run_dir}"
    print(f"removed {removed.name}{suffix}")
    return 0


def check_session_cluster(workspace: Workspace, name: str, cluster: str | None) -> None:
    """``--cluster`` on a session command: the session must be on that cluster."""
    if cluster is None:
        return
    workspace.settings.profile(cluster)  # an unknown cluster is named as such
    record = workspace.session(name)
    if record.cluster != cluster:
        raise NotFoundError(f"session {name} is on cluster {record.cluster}, not {cluster}")


def register(commands: Commands) -> None:
    submit = commands.add("submit", cmd_submit)
    add_resource_flags(submit)
    add_launch_flags(submit)
    add_preemption_flags(submit)
    add_environment_flags(submit)
    submit.add_argument("--project", help="project name (default: the code folder's name)")
    submit.add_argument("--memo", help="a note to remember this session by")
    add_cluster_flag(submit, "cluster to submit to (default: default_cluster, else local)")
    add_run_options(submit)
    submit.add_argument("--dry-run", action="store_true", help="print the sbatch script only")
    add_json_flag(
        submit, "print the created session (name, job id, cluster, run dir) as JSON; not with -f"
    )
    submit.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="stream the output until the session ends; exit with its code (not with --json)",
    )
    submit.add_argument("script", help="training script (.py, or an executable)")
    submit.add_argument(
        "script_args", nargs=argparse.REMAINDER, help="arguments passed to the script unchanged"
    )

    sync_cmd = commands.add("sync", cmd_sync)
    add_json_flag(sync_cmd)
    add_cluster_flag(sync_cmd, "sync only this cluster (default: every cluster)")

    ps = commands.add("ps", cmd_ps)
    ps.add_argument("--project", help="only this project")
    ps.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    add_json_flag(ps)
    ps.add_argument("--sweep", metavar="PROJECT/sweep-N", help="only this sweep's sessions")
    ps.add_argument(
        "--column",
        "-c",
        action="append",
        default=[],
        metavar="NAME",
        help="add a column: a hyperparameter, or memo, user, project, cluster (repeatable)",
    )
    ps.add_argument("--no-sync", action="store_true", help="show the catalog without asking Slurm")
    add_user_flags(ps, "sessions (default: yours)")
    add_cluster_flag(ps, "only this cluster's sessions (default: every cluster)")
    ps.add_argument(
        "--stop-idle",
        metavar="DURATION",
        help="cancel running sessions whose GPUs sat at 0%% this long (e.g. 60, 1:30:00)",
    )

    show = commands.add("show", cmd_show)
    show.add_argument("session", help="PROJECT/N")
    add_cluster_flag(show, "check that the session is on this cluster")
    add_json_flag(show)
    show.add_argument("--no-sync", action="store_true")

    logs = commands.add("logs", cmd_logs)
    logs.add_argument("session", help="PROJECT/N")
    add_cluster_flag(logs, "check that the session is on this cluster")
    logs.add_argument("-f", "--follow", action="store_true")

    stop = commands.add("stop", cmd_stop)
    stop.add_argument("session", help="PROJECT/N")
    add_cluster_flag(stop, "check that the session is on this cluster")
    add_json_flag(stop)

    rm = commands.add("rm", cmd_rm)
    rm.add_argument("session", help="PROJECT/N")
    add_cluster_flag(rm, "check that the session is on this cluster")
    rm.add_argument("--purge", action="store_true", help="also delete the run directory")
    add_json_flag(rm)
