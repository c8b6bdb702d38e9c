"""Experiment commands: sweep and diff."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from nsml_hpc.cli.common import (
    Commands,
    Parser,
    add_cluster_flag,
    add_environment_flags,
    add_resource_flags,
    default_project,
    environment_steps,
    open_workspace,
    place_if_auto,
    resources_from,
)
from nsml_hpc.errors import SpecError
from nsml_hpc.spec import SessionSpec, parse_count
from nsml_hpc.sweep import expand, parse_grid, parse_range
from nsml_hpc.sweep_submit import Progress


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
    from nsml_hpc.submit import code_root_for, prepare
    from nsml_hpc.sweep_submit import submit_sweep

    # Options may also follow the script (as the usage reads); the script's own shared
    # arguments come after `--`.
    if "--" in args.rest:
        cut = args.rest.index("--")
        options, args.script_args = args.rest[:cut], args.rest[cut + 1 :]
    else:
        options, args.script_args = args.rest, []
    _sweep_options().parse_args(options, namespace=args)
    configurations = expand(
        [parse_grid(text) for text in args.grid],
        random_count=parse_count("--random", args.random, minimum=1),
        ranges=[parse_range(text) for text in args.range],
        choices=[parse_grid(text, flag="--choice") for text in args.choice],
        seed=parse_count("--seed", args.seed) or 0,
    )
    max_parallel = parse_count("--max-parallel", args.max_parallel, minimum=1)
    script = Path(args.script)
    if not script.is_file():
        raise SpecError(f"script not found: {args.script}")
    code_root = code_root_for(script, Path.cwd())
    with open_workspace() as workspace:
        spec = SessionSpec(
            project=args.project or default_project(code_root),
            script=script.resolve().relative_to(code_root).as_posix(),
            args=list(args.script_args),
            resources=resources_from(args),
            environment=environment_steps(args),
            memo=args.memo or "",
            cluster=args.cluster or workspace.settings.default_cluster,
        )
        backend = workspace.backend_for(spec.cluster)
        spec = place_if_auto(spec, backend)
        prepared = prepare(spec, workspace.settings, code_root)
        if args.dry_run:
            for index, configuration in enumerate(configurations):
                pairs = " ".join(f"{k}={v}" for k, v in configuration.items())
                print(f"{index:>4}  {pairs}")
            print(f"{len(configurations)} session(s) in one job array (not submitted)")
            return 0
        with progress_bar() as progress:
            done = submit_sweep(
                prepared,
                configurations,
                workspace.catalog,
                workspace.settings,
                backend,
                max_parallel=max_parallel,
                progress=progress,
            )
    arrays = ", ".join(done.array_ids)
    print(
        f"submitted sweep {done.name}: {len(done.sessions)} sessions "
        f"({done.sessions[0]} .. {done.sessions[-1]}) as job array {arrays}"
    )
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Show how two sessions differ: spec, hyperparameters, and their code (unified diff)."""
    from nsml_hpc.session_diff import diff_sessions

    with open_workspace() as workspace:
        result = diff_sessions(workspace.catalog, args.left, args.right, code=not args.no_code)
    if args.json:
        print(json.dumps(asdict(result), indent=2, sort_keys=True, default=str))
        return 0
    print(f"--- {result.left}\n+++ {result.right}")
    for title, changes in (("spec", result.spec), ("hyperparameters", result.hyperparameters)):
        print(f"{title}:" + ("" if changes else " same"))
        for change in changes:
            print(f"  {change.key}: {change.left!r} -> {change.right!r}")
    if not args.no_code:
        print("code:" + ("" if result.code else " same"))
        sys.stdout.writelines(result.code)
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
    add_environment_flags(sweep)
    sweep.add_argument("--project", help="project name (default: the code folder's name)")
    sweep.add_argument("--memo", help="a note for every session of the sweep")
    add_cluster_flag(sweep, "cluster to submit to (default: default_cluster, else local)")
    sweep.add_argument("--dry-run", action="store_true", help="list the configurations only")


def register(commands: Commands) -> None:
    diff = commands.add("diff", cmd_diff)
    diff.add_argument("left", help="PROJECT/N")
    diff.add_argument("right", help="PROJECT/N")
    diff.add_argument("--no-code", action="store_true", help="skip the code snapshot diff")
    diff.add_argument("--json", action="store_true")

    sweep = commands.add("sweep", cmd_sweep, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_sweep_options(sweep)
    sweep.add_argument("script", help="training script")
    sweep.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        metavar="...",
        help="more sweep options, then -- and the arguments every session gets",
    )
