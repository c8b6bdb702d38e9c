"""Pieces every command module shares: the one-line-error parser, resource flags, and the
workspace a command opens."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from nsml_hpc.errors import SpecError, UsageError
from nsml_hpc.job.spec import (
    EnvStep,
    Preemption,
    Resources,
    SessionSpec,
    parse_count,
    validate_memory,
)

if TYPE_CHECKING:
    from nsml_hpc.workspace import Workspace

Command = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage, so every error is one line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


class Commands:
    """Registers sub-commands; each command's docstring is its help."""

    def __init__(self, subparsers: Any) -> None:
        self._subparsers = subparsers

    def add(self, name: str, func: Command, **kwargs: Any) -> argparse.ArgumentParser:
        doc = func.__doc__ or ""
        sub: argparse.ArgumentParser = self._subparsers.add_parser(
            name, help=doc.strip().splitlines()[0] if doc else None, description=doc, **kwargs
        )
        sub.set_defaults(func=func)
        return sub

    def group(self, name: str, help_text: str) -> Commands:
        """A command with sub-commands of its own (``nsml-hpc model ls``)."""
        parser = self._subparsers.add_parser(name, help=help_text, description=help_text)
        return Commands(
            parser.add_subparsers(dest=f"{name}_command", required=True, parser_class=Parser)
        )


class EnvAction(argparse.Action):
    """Collect --setup/--module/--venv/--conda in command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        steps = list(getattr(namespace, "environment", None) or [])
        kind = self.dest.removeprefix("env_")
        steps.append(EnvStep(kind=kind, value=str(values)))  # type: ignore[arg-type]
        namespace.environment = steps


def add_resource_flags(parser: argparse.ArgumentParser, *, inherit: bool = False) -> None:
    """Resource flags; with ``inherit`` (fork) none has a default, so only given ones count."""
    group = parser.add_argument_group("resources" + (" (default: the parent's)" if inherit else ""))
    group.add_argument(
        "--gpus", default=None if inherit else "0", help="GPUs per node (--gres=gpu:N)"
    )
    group.add_argument("--nodes", default=None if inherit else "1", help="number of nodes")
    group.add_argument("--cpus-per-gpu", help="CPU cores per GPU")
    group.add_argument("--mem", help="memory per node, e.g. 32G")
    group.add_argument("--time", help="time limit, e.g. 4:00:00 or 2-00:00")
    group.add_argument(
        "--partition", help="Slurm partition, or 'auto': the one where the job starts first"
    )
    group.add_argument("--account", help="Slurm account")
    group.add_argument("--qos", help="Slurm QOS")
    group.add_argument("--constraint", help="node features, e.g. a100|h100")


def add_preemption_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("preemption and time limits")
    group.add_argument(
        "--grace",
        metavar="SECONDS",
        help="warn the job this long before its end to save a snapshot (default 120, or a "
        "quarter of --time when shorter; 0: no warning)",
    )
    group.add_argument(
        "--max-requeues",
        metavar="N",
        help="requeue after a warning at most N times (default 5; stops crash loops)",
    )
    group.add_argument(
        "--no-requeue",
        action="store_const",
        const=False,
        dest="requeue",
        help="never requeue: the job still gets the warning, then ends",
    )


def preemption_given(args: argparse.Namespace) -> dict[str, Any]:
    """The preemption settings given on the command line (parsed), by field name."""
    given: dict[str, Any] = {}
    if args.grace is not None:
        given["grace_seconds"] = parse_count("--grace", args.grace)
    if args.max_requeues is not None:
        given["max_requeues"] = parse_count("--max-requeues", args.max_requeues)
    if args.requeue is False:
        given["requeue"] = False
    return given


def script_spec(args: argparse.Namespace, workspace: Workspace) -> tuple[SessionSpec, Path]:
    """The spec a `submit` or `sweep` command line describes, and the code folder to snapshot."""
    script = Path(args.script)
    if not script.is_file():
        raise SpecError(f"script not found: {args.script}")
    code_root = workspace.code_root_for(script, Path.cwd())
    spec = SessionSpec(
        project=args.project or default_project(code_root),
        script=script.resolve().relative_to(code_root).as_posix(),
        args=list(args.script_args),
        resources=resources_from(args),
        environment=environment_steps(args),
        memo=args.memo or "",
        cluster=args.cluster or workspace.settings.default_cluster,
        preemption=Preemption(**preemption_given(args)),
    )
    return spec, code_root


def resources_given(args: argparse.Namespace) -> dict[str, Any]:
    """The resource flags given on the command line (parsed), by field name."""
    given: dict[str, Any] = {}
    if args.gpus is not None:
        given["gpus"] = parse_count("--gpus", args.gpus)
    if args.nodes is not None:
        given["nodes"] = parse_count("--nodes", args.nodes, minimum=1)
    if args.cpus_per_gpu is not None:
        given["cpus_per_gpu"] = parse_count("--cpus-per-gpu", args.cpus_per_gpu, minimum=1)
    if args.mem is not None:
        given["mem"] = validate_memory(args.mem)
    for name in ("time", "partition", "account", "qos", "constraint"):
        if getattr(args, name) is not None:
            given[name] = getattr(args, name)
    return given


def add_environment_flags(parser: argparse.ArgumentParser) -> None:
    env = parser.add_argument_group("environment (in command-line order)")
    env.add_argument(
        "--setup",
        dest="env_setup",
        action=EnvAction,
        metavar="CMD",
        help="a shell line to run in the job first (repeatable)",
    )
    env.add_argument(
        "--module",
        dest="env_module",
        action=EnvAction,
        metavar="M",
        help="module load M (repeatable)",
    )
    env.add_argument(
        "--venv", dest="env_venv", action=EnvAction, metavar="DIR", help="activate this virtualenv"
    )
    env.add_argument(
        "--conda", dest="env_conda", action=EnvAction, metavar="ENV", help="conda activate ENV"
    )
    parser.set_defaults(environment=[])


def environment_steps(args: argparse.Namespace) -> list[EnvStep]:
    steps: list[EnvStep] = list(args.environment or [])
    if sum(step.kind in ("venv", "conda") for step in steps) > 1:
        raise SpecError("give at most one of --venv and --conda")
    return steps


def resources_from(args: argparse.Namespace) -> Resources:
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


def terminal_passphrase(prompt: str) -> str | None:
    """Ask for a key's passphrase on the terminal (never echoed, never stored)."""
    import getpass

    return getpass.getpass(f"nsml-hpc: {prompt}")


@contextmanager
def open_workspace() -> Iterator[Workspace]:
    """The command's workspace; its backends' connections close when the command ends."""
    from nsml_hpc.workspace import Workspace

    prompt = terminal_passphrase if sys.stdin.isatty() else None
    with Workspace.open(passphrase_prompt=prompt) as workspace:
        for note in workspace.catalog.notes:  # e.g. the journal mode of a catalog on NFS
            print(f"nsml-hpc: note: {note}", file=sys.stderr)
        yield workspace


def add_cluster_flag(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--cluster", metavar="NAME", help=help_text)


def sync_quietly(workspace: Workspace, clusters: list[str] | None = None) -> None:
    """Sync before showing something; problems become warnings, cached data is still shown."""
    report = workspace.sync(clusters)
    for cluster, error in report.errors.items():
        warn(f"{about_cluster(cluster, error)} — showing cached data")
    for cluster, why in report.degraded.items():
        warn(about_cluster(cluster, why))
    for warning in report.warnings:
        warn(warning)
    if report.malformed_lines:
        warn(f"skipped {report.malformed_lines} malformed metric/event line(s); see `show`")


def about_cluster(cluster: str, error: str) -> str:
    """An error line that names its cluster once."""
    return error if f"cluster {cluster}" in error else f"cluster {cluster}: {error}"


def place_if_auto(spec: SessionSpec, workspace: Workspace) -> SessionSpec:
    """Resolve ``--partition auto`` (one sinfo + one sbatch --test-only per partition)."""
    from nsml_hpc.submit.placement import AUTO

    if spec.resources.partition != AUTO:
        return spec
    placement = workspace.place(spec)
    print(f"placement: {placement.explanation}", file=sys.stderr)
    return placement.spec


def warn(message: str) -> None:
    print(f"nsml-hpc: warning: {message}", file=sys.stderr)
