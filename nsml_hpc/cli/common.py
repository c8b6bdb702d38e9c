"""Pieces every command module shares: the one-line-error parser, resource flags, and the
workspace a command opens."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar, cast

from nsml_hpc.errors import SpecError, UsageError

T = TypeVar("T")

if TYPE_CHECKING:
    from nsml_hpc.config.settings import Settings
    from nsml_hpc.job.spec import EnvStep, Resources, SessionSpec
    from nsml_hpc.submit.create import Prepared
    from nsml_hpc.workspace import Reader, Workspace

Command = Callable[[argparse.Namespace], int]


# Flags whose value is itself an option (``--sbatch-arg --comment=x``): argparse would take
# the value for an unknown option, so the parser joins the two words first.
DASH_VALUE_FLAGS = frozenset({"--sbatch-arg"})
# Positionals that take the rest of the line, options included: the script's arguments and a
# command's sub-command (whose own parser joins its words).
_TAKES_THE_REST = frozenset({argparse.REMAINDER, argparse.PARSER})
_INVALID_CHOICE = re.compile(r"^argument ([^:]+): invalid choice: '([^']*)' \(choose from (.*)\)$")


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage, so every error is one line, and that
    says which command, option or value the user probably meant."""

    _argv: list[str]

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self._explain(message)} (see: {self._help_prog()} --help)")

    def _help_prog(self) -> str:
        return self._command_parser().prog

    def _explain(self, message: str) -> str:
        from nsml_hpc.suggest import did_you_mean

        invalid = _INVALID_CHOICE.match(message)
        if invalid:
            where, word, listed = invalid.groups()
            choices = re.findall(r"'([^']*)'", listed)
            if where in ("command",) or where.endswith("_command"):
                return f"unknown command {word!r}{did_you_mean(word, choices)}"
            return f"argument {where}: invalid choice {word!r}{did_you_mean(word, choices)}"
        if message.startswith("unrecognized arguments: "):
            words = message.removeprefix("unrecognized arguments: ").split()
            options = self._command_parser()._option_string_actions
            hints = [
                f"{word!r}{did_you_mean(word.split('=')[0], options)}"
                for word in words
                if word.startswith("-")
            ]
            if hints:
                return f"unknown option {', '.join(hints)}"
        return message

    def _command_parser(self) -> argparse.ArgumentParser:
        """The (sub-)command parser the words of the command line chose."""
        parser: argparse.ArgumentParser = self
        for word in getattr(self, "_argv", []):
            chosen = None
            for action in parser._actions:
                if isinstance(action, argparse._SubParsersAction) and word in action.choices:
                    chosen = action.choices[word]
            if chosen is not None:
                parser = chosen
        return parser

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        words = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(self._join_dash_values(words), namespace)

    def _join_dash_values(self, words: list[str]) -> list[str]:
        """``--sbatch-arg --comment=x`` -> ``--sbatch-arg=--comment=x``. Positional words are
        stepped over (``cluster add duo --sbatch-arg --comment=x``); the joining stops only
        where the rest of the line belongs to a positional that takes it whole: the script's
        own arguments (nargs=REMAINDER) or a sub-command's words (which its own parser joins)."""
        positionals = [action for action in self._actions if not action.option_strings]
        slot = 0  # the positional the next positional word fills
        out: list[str] = []
        index = 0
        while index < len(words):
            word = words[index]
            if word == "--":
                return out + words[index:]
            if not word.startswith("-") or word == "-":
                action = positionals[slot] if slot < len(positionals) else None
                if action is not None and action.nargs in _TAKES_THE_REST:
                    return out + words[index:]
                out.append(word)
                index += 1
                if action is not None and action.nargs not in ("*", "+"):
                    slot += 1
                    following = positionals[slot] if slot < len(positionals) else None
                    if following is not None and following.nargs == argparse.REMAINDER:
                        # argparse hands everything after this word to the remainder
                        return out + words[index:]
                continue
            action = self._option_string_actions.get(word)
            if word in DASH_VALUE_FLAGS and action is not None and index + 1 < len(words):
                out.append(f"{word}={words[index + 1]}")
                index += 2
                continue
            out.append(word)
            index += 1
            if action is None or action.nargs == 0 or "=" in word:
                continue
            if action.nargs not in (None, 1):
                return out + words[index:]  # a variable number of values: leave the rest be
            if index < len(words):
                out.append(words[index])  # the option's value, whatever it looks like
                index += 1
        return out


_RST_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`(~?)([^`<]+?)\s*(?:<[^`>]*>)?`")
_RST_LITERAL = re.compile(r"``(.+?)``")
_RST_INTERPRETED = re.compile(r"`([^`<]+?)\s*(?:<[^`>]*>)?`_{0,2}")


def plain(text: str) -> str:
    """``text`` without reStructuredText inline markup (a docstring's markup is for the API
    docs, not for a terminal): double back-quoted literals, roles (``:func:``, ``:class:``;
    with ``~``, only the last dotted name) and interpreted text or links (the text, without
    its target) keep their words and lose their back quotes."""
    text = _RST_ROLE.sub(
        lambda m: m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2), text
    )
    text = _RST_LITERAL.sub(r"\1", text)
    return _RST_INTERPRETED.sub(r"\1", text)


def summary(doc: str) -> str:
    """The one-line ``--help`` summary of a command: the first sentence of its docstring,
    however many lines it spans, as plain text (:func:`plain`)."""
    paragraph = plain(" ".join(doc.strip().split("\n\n")[0].split()))
    match = re.search(r"(?<=[.!?])\s", paragraph)
    sentence = paragraph[: match.start()] if match else paragraph
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="log what nsml-hpc does to stderr (-vv: more; also NSML_HPC_LOG=debug|info)",
    )


class _Unbuilt:
    """Takes a command's arguments without building them: the parser of a command the
    command line does not name (listed by its summary only)."""

    def __getattr__(self, name: str) -> Any:
        return self._ignore

    def _ignore(self, *args: Any, **kwargs: Any) -> _Unbuilt:
        return self


class Commands:
    """Registers sub-commands; each command's docstring is its help (the first sentence is
    the summary ``nsml-hpc --help`` lists). With ``only``, the other commands are listed
    (name and summary) but their arguments are not built."""

    def __init__(self, subparsers: Any, only: str | None = None) -> None:
        self._subparsers = subparsers
        self._only = only

    def add(self, name: str, func: Command, **kwargs: Any) -> argparse.ArgumentParser:
        doc = func.__doc__ or ""
        if self._only is not None and name != self._only:
            self._subparsers.add_parser(name, help=summary(doc) if doc else None, add_help=False)
            return cast(argparse.ArgumentParser, _Unbuilt())
        sub: argparse.ArgumentParser = self._subparsers.add_parser(
            name, help=summary(doc) if doc else None, description=doc, **kwargs
        )
        add_verbose_flag(sub)
        sub.set_defaults(func=func)
        return sub

    def group(self, name: str, help_text: str) -> Commands:
        """A command with sub-commands of its own (``nsml-hpc model ls``)."""
        if self._only is not None and name != self._only:
            self._subparsers.add_parser(name, help=help_text, add_help=False)
            return cast(Commands, _Unbuilt())
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
        from nsml_hpc.job.spec import EnvStep

        kind = self.dest.removeprefix("env_")
        steps.append(EnvStep(kind=kind, value=str(values)))  # type: ignore[arg-type]
        namespace.environment = steps


def add_resource_flags(parser: argparse.ArgumentParser, *, inherit: bool = False) -> None:
    """Resource flags; with ``inherit`` (fork) none has a default, so only given ones count."""
    group = parser.add_argument_group("resources" + (" (default: the parent's)" if inherit else ""))
    group.add_argument(
        "--gpus",
        metavar="[TYPE:]N",
        help="GPUs on each node, optionally of a type: 4 or a100:4 (--gres=gpu[:TYPE]:N)",
    )
    group.add_argument(
        "--gpus-per-node", metavar="[TYPE:]N", help="the same as --gpus (Slurm's spelling)"
    )
    group.add_argument("--nodes", default=None if inherit else "1", help="number of nodes")
    group.add_argument(
        "--ntasks-per-node",
        metavar="N",
        help="tasks on each node (--launch srun: ranks on each node; default 1)",
    )
    group.add_argument(
        "--cpus-per-task", metavar="N", help="CPU cores per task (torchrun: per node)"
    )
    group.add_argument("--cpus-per-gpu", help="CPU cores per GPU")
    group.add_argument("--mem", help="memory per node, e.g. 32G")
    group.add_argument("--time", help="time limit, e.g. 4:00:00 or 2-00:00")
    group.add_argument(
        "--partition", help="Slurm partition, or 'auto': the one where the job starts first"
    )
    group.add_argument("--account", help="Slurm account")
    group.add_argument("--qos", help="Slurm QOS")
    group.add_argument("--constraint", help="node features, e.g. a100|h100")
    group.add_argument(
        "--exclusive",
        action="store_const",
        const=True,
        help="whole nodes, shared with no other job",
    )
    group.add_argument(
        "--no-exclusive",
        action="store_const",
        const=False,
        dest="exclusive",
        help="share nodes, though the cluster profile (or the parent) asks for whole ones",
    )
    group.add_argument("--reservation", help="run in this Slurm reservation")
    group.add_argument(
        "--dependency",
        metavar="DEP",
        help="Slurm's --dependency, e.g. afterok:1234 (see also --after)",
    )
    group.add_argument(
        "--mail-type", metavar="TYPES", help="mail on these events, e.g. END,FAIL (Slurm's list)"
    )
    group.add_argument("--mail-user", metavar="ADDRESS", help="who gets the mail")
    group.add_argument(
        "--sbatch-arg",
        dest="sbatch_args",
        action="append",
        metavar="--OPT=VALUE",
        help="one more sbatch option nsml-hpc does not model, e.g. --sbatch-arg=--comment=x "
        "(repeatable; one option per value)",
    )


def add_launch_flags(parser: argparse.ArgumentParser) -> None:
    """How the script is started on the nodes, and what it waits for (submit, sweep)."""
    group = parser.add_argument_group("launch")
    group.add_argument(
        "--launch",
        default="plain",
        metavar="MODE",
        help="plain (once, on the first node), srun (--ntasks-per-node ranks on every node), "
        "srun-per-gpu (one rank per GPU), torchrun (torchrun on every node); "
        "see docs/multi-node.md",
    )
    group.add_argument(
        "--after",
        action="append",
        metavar="SESSION",
        help="start once SESSION (same cluster) completed successfully (repeatable)",
    )


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
    from nsml_hpc.job.spec import parse_count

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
    from nsml_hpc.job.spec import Preemption, SessionSpec

    script = Path(args.script)
    if not script.is_file():
        raise SpecError(f"script not found: {args.script}")
    from nsml_hpc.submit.request import after_given

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
        launch=args.launch,
        after=after_given(args.after),
    )
    return spec, code_root


def request_values(args: argparse.Namespace) -> dict[str, Any]:
    """The resource flags as the request parser takes them (None: not given)."""
    from nsml_hpc.submit.request import REQUEST_KEYS

    return {name: getattr(args, name, None) for name in REQUEST_KEYS}


def resources_given(args: argparse.Namespace) -> dict[str, Any]:
    """The resource flags given on the command line (parsed), by field name: the same parser
    as the notebook client's (:mod:`nsml_hpc.submit.request`)."""
    from nsml_hpc.submit.request import resources_given as parse

    return parse(request_values(args))


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
    """Every resource flag, with the defaults for those not given."""
    from nsml_hpc.submit.request import resources_from as parse

    return parse(request_values(args))


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


def read_workspace(
    read: Callable[[Reader], T],
    *,
    settings: Settings | None = None,
    sync: bool = False,
    clusters: list[str] | None = None,
    before: Callable[[Workspace], None] | None = None,
) -> T:
    """``read`` on the login node's fast path when it can answer (:meth:`Workspace.read`:
    a SQLite catalog of the known schema, and with ``sync`` only when a sync could find
    nothing new), else on a full workspace: ``before`` (checks), then its notes, then (with
    ``sync``) a quiet sync of ``clusters``, then ``read``."""
    from nsml_hpc.workspace import Workspace

    def on_open(workspace: Workspace) -> None:
        if before is not None:
            before(workspace)
        for note in workspace.catalog.notes:  # e.g. the journal mode of a catalog on NFS
            print(f"nsml-hpc: note: {note}", file=sys.stderr)
        if sync:
            sync_quietly(workspace, clusters)

    prompt = terminal_passphrase if sys.stdin.isatty() else None
    return Workspace.read(
        read, settings=settings, sync=sync, passphrase_prompt=prompt, on_open=on_open
    )


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


def prepare_submission(workspace: Workspace, spec: SessionSpec, code_root: Path) -> Prepared:
    """The workspace's steps before a submit or a sweep (placement, ``--after``, the
    spec's checks and the code snapshot, the fit check), with its notes on stderr and a
    sync whose problems are warnings."""
    return workspace.prepare_submission(
        spec,
        code_root,
        sync=lambda clusters: sync_quietly(workspace, clusters),
        note=lambda text: print(text, file=sys.stderr),
    )


def warn(message: str) -> None:
    print(f"nsml-hpc: warning: {message}", file=sys.stderr)


def color_allowed(stream: TextIO) -> bool:
    """Colour (ANSI escapes) only on a terminal, never with ``NO_COLOR`` set to anything
    non-empty (https://no-color.org) or ``TERM=dumb``."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# What a terminal must never receive raw, even inside a JSON string: C1 controls (C0 ones
# json.dumps escapes itself), bidi overrides and isolates, line/paragraph separators.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def print_json(data: Any) -> None:
    """``--json`` output, the same on every command: indented, keys sorted, text as UTF-8
    (no ``\\/`` escapes, letters of every script as they are) except what could steer a
    terminal (controls, bidi overrides: ``\\u`` escapes, still exact JSON), NaN/inf as
    null."""
    import json

    text = json.dumps(_json_safe(data), indent=2, sort_keys=True, ensure_ascii=False, default=str)
    print(_UNSAFE_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", text))


def _json_safe(value: Any) -> Any:
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def add_json_flag(parser: argparse.ArgumentParser, help_text: str | None = None) -> None:
    """``--json``: the same flag, the same output conventions (:func:`print_json`), on every
    command that prints data."""
    parser.add_argument("--json", action="store_true", help=help_text or "print JSON")
