"""Experiment commands: sweep, compare, leaderboard, diff, plot, gpus."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsml_hpc.cli.common import (
    Commands,
    Parser,
    add_cluster_flag,
    add_environment_flags,
    add_json_flag,
    add_launch_flags,
    add_preemption_flags,
    add_resource_flags,
    color_allowed,
    open_workspace,
    prepare_submission,
    print_json,
    script_spec,
    sync_quietly,
)
from nsml_hpc.errors import NotFoundError, SpecError

if TYPE_CHECKING:
    from nsml_hpc.experiments.views import Curve
    from nsml_hpc.sweeps.submit import Progress


@contextmanager
def progress_bar() -> Iterator[Progress]:
    """A transient progress bar on stderr when it is a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        yield lambda phase, done, total: None
        return
    from rich.console import Console
    from rich.progress import Progress as RichProgress

    with RichProgress(console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, object] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)  # type: ignore[arg-type]

        yield update


def cmd_sweep(args: argparse.Namespace) -> int:
    """Submit a hyperparameter sweep: one session per configuration, one job array.

    Script arguments shared by every configuration go after `--`:
      nsml-hpc sweep train.py --grid lr=0.1,0.01 --grid bs=32,64 --max-parallel 2 -- --epochs 5
    """
    # Options may also follow the script (as the usage reads); the script's own shared
    # arguments come after `--`.
    if "--" in args.rest:
        cut = args.rest.index("--")
        options, args.script_args = args.rest[:cut], args.rest[cut + 1 :]
    else:
        options, args.script_args = args.rest, []
    from nsml_hpc.job.spec import parse_count
    from nsml_hpc.sweeps.grid import expand, parse_grid, parse_range

    _sweep_options().parse_args(options, namespace=args)
    configurations = expand(
        [parse_grid(text) for text in args.grid],
        random_count=parse_count("--random", args.random, minimum=1),
        ranges=[parse_range(text) for text in args.range],
        choices=[parse_grid(text, flag="--choice") for text in args.choice],
        seed=parse_count("--seed", args.seed) or 0,
    )
    max_parallel = parse_count("--max-parallel", args.max_parallel, minimum=1)
    with open_workspace() as workspace:
        spec, code_root = script_spec(args, workspace)
        prepared = prepare_submission(workspace, spec, code_root)
        if args.dry_run:
            # stdout: the array script, exactly as submit --dry-run prints its script;
            # stderr: the configurations the array's tasks run
            script = workspace.sweep_dry_run(prepared, configurations, max_parallel=max_parallel)
            for index, configuration in enumerate(configurations):
                pairs = " ".join(f"{k}={v}" for k, v in configuration.items())
                print(f"{index:>4}  {pairs}", file=sys.stderr)
            print(
                f"{len(configurations)} session(s) in one job array (not submitted)",
                file=sys.stderr,
            )
            sys.stdout.write(script)
            return 0
        with progress_bar() as progress:
            done = workspace.sweep(
                prepared, configurations, max_parallel=max_parallel, progress=progress
            )
    if args.json:
        print_json(
            {
                "sweep": done.name,
                "sessions": done.sessions,
                "array_ids": done.array_ids,
                "sweep_dir": str(done.sweep_dir),
            }
        )
        return 0
    arrays = ", ".join(done.array_ids)
    print(
        f"submitted sweep {done.name}: {len(done.sessions)} sessions "
        f"({done.sessions[0]} .. {done.sessions[-1]}) as job array {arrays}"
    )
    return 0


FORMATS = ("table", "csv", "json", "markdown")


def _markdown(frame: Any) -> str:
    header = [frame.index.name or "", *map(str, frame.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in frame.iterrows():
        cells = [str(index), *("" if value is None else str(value) for value in row.tolist())]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _print_frame(frame: Any, fmt: str) -> None:
    """CSV and JSON exact (names as the job wrote them); table and markdown for a terminal:
    every name and text value made printable."""
    if fmt == "csv":
        sys.stdout.write(frame.to_csv())
    elif fmt == "json":  # not pandas' to_json: it writes "mnist\/1"
        records = frame.reset_index().astype(object).where(frame.reset_index().notna(), None)
        print_json(records.to_dict(orient="records"))
    elif fmt == "markdown":
        print(_markdown(_printable_frame(frame)))
    else:
        print(_printable_frame(frame).to_string(na_rep="-", float_format=lambda v: f"{v:.4g}"))


def _printable_frame(frame: Any) -> Any:
    from nsml_hpc.formatting import printable

    shown = frame.copy()
    shown.index = [printable(label) for label in frame.index]
    shown.index.name = frame.index.name
    shown.columns = [printable(label) for label in frame.columns]
    for column in shown.columns:
        if shown[column].dtype == object:
            shown[column] = [
                printable(value) if isinstance(value, str) else value for value in shown[column]
            ]
    return shown


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare sessions: hyperparameters that differ, state, runtime, and for each metric its
    last value, best value and the step of the best."""
    with open_workspace() as workspace:
        owner = workspace.owner_for(args.user, False) if args.user else None  # a team view
        if not args.no_sync:
            sync_quietly(workspace)
        frame = workspace.comparison_table(
            args.sessions, project=args.project, metrics=args.metric, owner=owner
        )
    _print_frame(frame, "json" if args.json else args.format)
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Rank a project's sessions (or, with --dataset, the sessions that read a dataset) by the
    best value of one metric."""
    from nsml_hpc.formatting import format_number, printable, table
    from nsml_hpc.job.direction import Goal

    if args.project is None and args.dataset is None:
        raise SpecError("give --project NAME or --dataset NAME[:VERSION]")
    flag: Goal | None = "max" if args.max else "min" if args.min else None
    with open_workspace() as workspace:
        metric, goal = workspace.ranking_goal(args.metric, flag)
        owner = workspace.owner_for(args.user, False) if args.user else None  # the team's board
        if not args.no_sync:
            sync_quietly(workspace)
        if args.dataset is not None:
            standings = workspace.dataset_leaderboard(
                args.dataset, metric, goal, top=args.top, project=args.project
            )
        else:
            standings = workspace.leaderboard(args.project, metric, goal, args.top, owner=owner)
        shared = workspace.shared()
    if args.json or args.format == "json":
        print_json([asdict(s) for s in standings])
        return 0
    better = "higher" if goal == "max" else "lower"
    title = f"dataset {args.dataset}" if args.dataset else args.project
    if args.dataset and args.project:
        title += f" (project {args.project})"
    print(f"{printable(title)}: {printable(metric)} ({better} is better)")
    with_data = args.dataset is not None
    rows = [
        [
            str(s.rank),
            s.session,
            *([s.user] if shared else []),
            *([s.dataset or "-"] if with_data else []),
            format_number(s.best),
            str(s.best_step),
            format_number(s.last),
            s.state,
            s.hyperparameters,
        ]
        for s in standings
    ]
    headers = ["#", "SESSION", *(["USER"] if shared else [])]
    headers += [*(["DATASET"] if with_data else []), "BEST", "AT STEP", "LAST", "STATE"]
    print(table([*headers, "HYPERPARAMETERS"], rows))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Plot metrics of one or more sessions in the terminal (or into a PNG file).

    With --metric, that metric's curves; without, every metric the sessions reported, one
    small plot each (as W&B's default panels). Colours only on a terminal, never with
    NO_COLOR set."""
    import shutil

    from nsml_hpc.job.spec import parse_count

    width = args.width or shutil.get_terminal_size((100, 30)).columns
    smoothing = parse_count("--smooth", args.smooth, minimum=1) or 1
    with open_workspace() as workspace:
        if not args.no_sync:
            sync_quietly(workspace)
        metrics = args.metric or _all_metrics(workspace, args.sessions)
        columns = 1 if len(metrics) == 1 else 2
        panels = [
            (
                metric,
                workspace.curves(
                    args.sessions,
                    metric,
                    x=args.x,
                    buckets=max(width // columns, 20),
                    smoothing=smoothing,
                ),
            )
            for metric in metrics
        ]
        shown = sorted({curve.session for _, found in panels for curve in found})
        marks = workspace.hyperparameter_marks(shown, args.x)
    if args.png:
        _plot_png(panels, args.x, Path(args.png), marks)
        print(f"wrote {args.png}")
        return 0
    sys.stdout.write(render_terminal_plot(panels, args.x, width, args.height, marks))
    for where, label in marks:
        print(f"| {args.x} {where:g}: {label}")
    return 0


def _all_metrics(workspace: Any, sessions: list[str]) -> list[str]:
    names = sorted({name for session in sessions for name in workspace.metric_names(session)})
    if not names:
        raise NotFoundError(f"{', '.join(sessions)} reported no metrics yet")
    return names


def render_terminal_plot(
    panels: list[tuple[str, list[Curve]]],
    x: str,
    width: int,
    height: int,
    marks: Sequence[tuple[float, str]] = (),
) -> str:
    """The plot as text: one panel per metric, two per row when there are several, with a
    line where a hyperparameter changed; colour only where :func:`color_allowed` says so
    (stdout a terminal, NO_COLOR unset)."""
    import plotext

    from nsml_hpc.formatting import printable

    plotext.clear_figure()
    plotext.main()  # subplots() splits the ACTIVE plot: start from the whole figure
    columns = 1 if len(panels) == 1 else 2
    rows = (len(panels) + columns - 1) // columns
    plotext.subplots(rows, columns)
    plotext.plotsize(width, height * rows)
    for index, (metric, found) in enumerate(panels):
        plotext.subplot(index // columns + 1, index % columns + 1)
        for curve in found:
            plotext.plot(curve.xs, curve.ys, label=printable(curve.session))
        for where, _ in marks:
            plotext.vline(where, "red")
        plotext.title(printable(metric))
        plotext.xlabel("step" if x == "step" else "seconds since start")
    text = str(plotext.build())
    if not color_allowed(sys.stdout):
        text = str(plotext.uncolorize(text))
    return text if text.endswith("\n") else text + "\n"


def _plot_png(
    panels: list[tuple[str, list[Curve]]],
    x: str,
    path: Path,
    marks: Sequence[tuple[float, str]] = (),
) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        raise SpecError("--png needs matplotlib: pip install 'nsml-hpc[plot]'") from None
    columns = 1 if len(panels) == 1 else 2
    rows = (len(panels) + columns - 1) // columns
    figure, grid = pyplot.subplots(
        rows,
        columns,
        figsize=(9 * columns / 1.5 if columns > 1 else 9, 4 * rows),
        dpi=110,
        squeeze=False,
    )
    for index, (metric, found) in enumerate(panels):
        axes = grid[index // columns][index % columns]
        for curve in found:
            axes.plot(curve.xs, curve.ys, label=curve.session, linewidth=1.2)
        for where, label in marks:
            axes.axvline(where, color="red", linestyle="--", linewidth=0.8)
            axes.annotate(
                label, (where, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                va="top", ha="right", fontsize=7, color="red",
            )  # fmt: skip
        axes.set_title(metric)
        axes.set_xlabel("step" if x == "step" else "seconds since start")
        axes.grid(alpha=0.3)
        axes.legend()
    for index in range(len(panels), rows * columns):
        grid[index // columns][index % columns].set_visible(False)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def cmd_gpus(args: argparse.Namespace) -> int:
    """GPUs per partition: types, GPUs on each node, total, allocated, idle, and pending
    demand (one sinfo and one squeue call); with --nodes, every node's GPUs too."""
    from nsml_hpc.formatting import table
    from nsml_hpc.slurm.sinfo import node_rows, partition_summary, per_node_text

    with open_workspace() as workspace:
        nodes, demand = workspace.gpu_nodes(args.cluster)
    partitions = partition_summary(nodes)
    rows = []
    for part in partitions:
        pending = demand.get(part.name)
        rows.append(
            [
                part.name + ("*" if part.is_default else ""),
                ",".join(part.gpu_types) or "-",
                str(part.nodes),
                per_node_text(nodes, part.name),
                str(part.gpus_total),
                str(part.gpus_allocated),
                str(part.gpus_idle),
                str(part.gpus_unavailable),
                f"{pending.gpus} GPUs / {pending.jobs} jobs" if pending else "-",
            ]
        )
    if args.json:
        listing = [
            {
                "partition": p.name,
                "default": p.is_default,
                "types": list(p.gpu_types),
                "nodes": p.nodes,
                "per_node": per_node_text(nodes, p.name),
                "total": p.gpus_total,
                "allocated": p.gpus_allocated,
                "idle": p.gpus_idle,
                "unavailable": p.gpus_unavailable,
                "pending_gpus": demand[p.name].gpus if p.name in demand else 0,
                "pending_jobs": demand[p.name].jobs if p.name in demand else 0,
            }
            for p in partitions
        ]
        shown: Any = {"partitions": listing, "nodes": node_rows(nodes)} if args.nodes else listing
        print_json(shown)
        return 0
    headers = ["PARTITION", "TYPES", "NODES", "PER NODE", "TOTAL", "ALLOCATED", "IDLE", "DOWN"]
    print(table([*headers, "PENDING"], rows))
    if args.nodes:
        print()
        print(
            table(
                ["NODE", "PARTITIONS", "STATE", "TYPES", "GPUS", "USED", "FREE"],
                [
                    [
                        row["node"],
                        ",".join(row["partitions"]),
                        row["state"],
                        ",".join(row["types"]) or "-",
                        str(row["total"]),
                        str(row["used"]),
                        str(row["free"]),
                    ]
                    for row in node_rows(nodes)
                ],
            )
        )
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Show how two sessions differ: spec, hyperparameters, and their code (unified diff)."""
    with open_workspace() as workspace:
        result = workspace.diff(args.left, args.right, code=not args.no_code)
    if args.json:
        print_json(asdict(result))
        return 0
    from nsml_hpc.formatting import printable

    print(f"--- {printable(result.left)}\n+++ {printable(result.right)}")
    for title, changes in (("spec", result.spec), ("hyperparameters", result.hyperparameters)):
        print(f"{title}:" + ("" if changes else " same"))
        for change in changes:
            print(f"  {printable(change.key)}: {change.left!r} -> {change.right!r}")
    if not args.no_code:
        print("code:" + ("" if result.code else " same"))
        # the code diff shows the user's own files, line by line, each line made printable
        sys.stdout.writelines(printable(line.rstrip("\n")) + "\n" for line in result.code)
    return 0


def _sweep_options(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The sweep's options, on ``parser`` or on a parser of their own (for the words after
    the script)."""
    if parser is None:
        parser = Parser(prog="nsml-hpc sweep", add_help=False)
    _add_sweep_options(parser)
    return parser


def _add_sweep_options(sweep: argparse.ArgumentParser) -> None:
    space = sweep.add_argument_group("search space")
    space.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="values to try, all combinations (repeatable)",
    )
    space.add_argument("--random", metavar="N", help="N random draws over --range/--choice")
    space.add_argument(
        "--range",
        action="append",
        default=[],
        metavar="NAME=MIN:MAX[:log|int]",
        help="a range to draw from (repeatable)",
    )
    space.add_argument(
        "--choice",
        action="append",
        default=[],
        metavar="NAME=A,B",
        help="values to draw from (repeatable)",
    )
    space.add_argument("--seed", default="0", help="seed of the random draws")
    sweep.add_argument("--max-parallel", metavar="K", help="at most K sessions run at once")
    add_resource_flags(sweep)
    add_launch_flags(sweep)
    add_environment_flags(sweep)
    add_preemption_flags(sweep)
    sweep.add_argument("--project", help="project name (default: the code folder's name)")
    sweep.add_argument("--memo", help="a note for every session of the sweep")
    add_cluster_flag(sweep, "cluster to submit to (default: default_cluster, else local)")
    sweep.add_argument(
        "--dry-run",
        action="store_true",
        help="print the array script (configurations on stderr); submit nothing",
    )
    add_json_flag(sweep, "print the created sweep (name, sessions, array ids) as JSON")


def register(commands: Commands) -> None:
    compare = commands.add("compare", cmd_compare)
    compare.add_argument("sessions", nargs="*", help="PROJECT/N ...")
    compare.add_argument("--project", help="every session of this project")
    compare.add_argument("--metric", action="append", default=[], help="only these metrics")
    compare.add_argument("--format", choices=FORMATS, default="table")
    add_json_flag(compare, "the same as --format json")
    compare.add_argument("--no-sync", action="store_true")
    compare.add_argument("--user", metavar="NAME", help="with --project: only this user's")
    compare.add_argument(
        "--all-users", action="store_true", help="with --project: every user's (the default)"
    )

    board = commands.add("leaderboard", cmd_leaderboard)
    board.add_argument("--project", help="rank this project's sessions")
    board.add_argument(
        "--dataset",
        metavar="NAME[:VERSION]",
        help="rank the sessions that read this dataset (of --project, if given)",
    )
    board.add_argument(
        "--metric", required=True, help="NAME or NAME:min|max (default: by its name, [metrics])"
    )
    direction = board.add_mutually_exclusive_group()
    direction.add_argument("--max", action="store_true", help="higher is better")
    direction.add_argument("--min", action="store_true", help="lower is better")
    board.add_argument("--top", type=int, help="only the first N")
    board.add_argument("--format", choices=("table", "json"), default="table")
    add_json_flag(board, "the same as --format json")
    board.add_argument("--no-sync", action="store_true")
    board.add_argument("--user", metavar="NAME", help="only this user's sessions")
    board.add_argument(
        "--all-users", action="store_true", help="every user's sessions (the default)"
    )

    plot = commands.add("plot", cmd_plot)
    plot.add_argument("sessions", nargs="+", help="PROJECT/N ...")
    plot.add_argument(
        "--metric",
        action="append",
        default=[],
        help="this metric (repeatable; default: every metric, one small plot each)",
    )
    plot.add_argument("--x", choices=("step", "time"), default="step")
    plot.add_argument("--smooth", metavar="K", help="moving average over K points")
    plot.add_argument("--png", metavar="FILE", help="write a PNG instead (needs matplotlib)")
    plot.add_argument("--width", type=int, help="columns (default: the terminal's)")
    plot.add_argument("--height", type=int, default=20)
    plot.add_argument("--no-sync", action="store_true")

    gpus = commands.add("gpus", cmd_gpus)
    gpus.add_argument("--cluster", default="local", help=argparse.SUPPRESS)
    add_json_flag(gpus)
    gpus.add_argument("--nodes", action="store_true", help="list every node's GPUs too")

    diff = commands.add("diff", cmd_diff)
    diff.add_argument("left", help="PROJECT/N")
    diff.add_argument("right", help="PROJECT/N")
    diff.add_argument("--no-code", action="store_true", help="skip the code snapshot diff")
    add_json_flag(diff)

    sweep = commands.add("sweep", cmd_sweep, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_sweep_options(sweep)
    sweep.add_argument("script", help="training script")
    sweep.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        metavar="...",
        help="more sweep options, then -- and the arguments every session gets",
    )
