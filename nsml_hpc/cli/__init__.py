"""``nsml-hpc``: a thin command line over the library. Each command opens the workspace, calls
library functions, and prints; errors become one line on stderr and a non-zero exit code.

Commands live in one module per feature, each with a ``register(commands)`` function listed
in ``COMMAND_INDEX``; a command line imports only its command's module.

Exit codes: each error's, from the table beside the error tree (:data:`nsml_hpc.errors.EXIT_CODES`:
1 other, 2 bad input, 3 not found, 4 Slurm/backend, 5 config/catalog, 6 not yours: another
user's session); 130 interrupted.
``submit --follow`` exits with the job's own exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import ModuleType

from nsml_hpc import __version__
from nsml_hpc.cli.common import Commands, Parser, add_verbose_flag
from nsml_hpc.errors import NsmlError, exit_code

# Each command module and the commands it registers, with the summary ``nsml-hpc --help``
# lists (its function's first sentence; tests/pure/test_cli_light.py checks this table against
# what the modules register). A command line imports only the module of its command, so
# ``--help`` and a light command load none of the others.
COMMAND_INDEX: dict[str, tuple[str, ...]] = {
    "session_commands": ("submit", "sync", "ps", "show", "logs", "stop", "rm"),
    "cluster_commands": ("cluster",),
    "snapshot_commands": ("model", "fork", "gc"),
    "experiment_commands": ("compare", "leaderboard", "plot", "gpus", "diff", "sweep"),
    "export_command": ("export",),
    "edit_commands": ("memo",),
    "config_command": ("config",),
    "completion": ("completion",),
    "tui_command": ("tui",),
    "catalog_commands": ("catalog",),
    "hparam_commands": ("set",),
    "dataset_commands": ("dataset",),
    "serve_command": ("serve",),
}
COMMAND_SUMMARIES: dict[str, str] = {
    "submit": "Submit SCRIPT [ARGS...] as a new session (on --cluster NAME, default: local).",
    "sync": "Ingest new metrics and events, and ask Slurm about your live sessions (one sacct "
    "per cluster) as soon as the poll floor allows.",
    "ps": "List your sessions of every cluster (or --cluster NAME) with their name, state (and "
    "pending reason), GPUs, elapsed time and last metrics.",
    "show": "Show one session: spec, job ids, state history, events, latest metrics.",
    "logs": "Print the session's Slurm output; -f follows it until the session ends, saying on "
    "stderr what a pending session waits for (Ctrl-C stops following, not the session).",
    "stop": "Cancel a pending or running session.",
    "rm": "Remove a finished session from the catalog; --purge also deletes its run directory.",
    "cluster": "Cluster profiles: add, ls, rm, test, trust.",
    "model": "Snapshots of a session: ls, rm, pin, unpin, pull, du.",
    "fork": "Fork a session: new hyperparameters and resources, resuming from one of its "
    "snapshots.",
    "gc": "Delete stale snapshots by the retention policies of the config file.",
    "compare": "Compare sessions: hyperparameters that differ, state, runtime, and for each "
    "metric its last value, best value and the step of the best.",
    "leaderboard": "Rank a project's sessions (or, with --dataset, the sessions that read a "
    "dataset) by the best value of one metric.",
    "plot": "Plot metrics of one or more sessions in the terminal (or into a PNG file).",
    "gpus": "GPUs per partition: types, GPUs on each node, total, allocated, idle, and pending "
    "demand (one sinfo and one squeue call); with --nodes, every node's GPUs too.",
    "diff": "Show how two sessions differ: spec, hyperparameters, and their code (unified diff).",
    "sweep": "Submit a hyperparameter sweep: one session per configuration, one job array.",
    "export": "Export every metric point of the sessions (session, step, time, metric, value).",
    "memo": "Set (or with no TEXT, clear) the memo of a session; the TUI's e key does the same.",
    "config": "Show the effective settings and where each comes from (environment, config file "
    "or default), and the files nsml-hpc uses.",
    "completion": "Print the shell completion script for bash, zsh or fish, or install it "
    "(--install).",
    "tui": "Open the terminal UI: sessions, live metrics, logs, snapshots, compare, cluster.",
    "catalog": "The catalog itself: team set-up, schema upgrade, whoami.",
    "set": "Change hyperparameters of a running session: nsml-hpc set mnist/3 lr=0.01.",
    "dataset": "Datasets pushed to a cluster once, read by sessions.",
    "serve": "Serve the TUI over HTTP for a browser, bound to 127.0.0.1 with a token; prints "
    "the ssh -L line that reaches it from a laptop.",
}


def command_module(name: str) -> ModuleType:
    """The command module ``name`` of :data:`COMMAND_INDEX`, imported now."""
    if name == "session_commands":
        from nsml_hpc.cli import session_commands

        return session_commands
    if name == "cluster_commands":
        from nsml_hpc.cli import cluster_commands

        return cluster_commands
    if name == "snapshot_commands":
        from nsml_hpc.cli import snapshot_commands

        return snapshot_commands
    if name == "experiment_commands":
        from nsml_hpc.cli import experiment_commands

        return experiment_commands
    if name == "export_command":
        from nsml_hpc.cli import export_command

        return export_command
    if name == "edit_commands":
        from nsml_hpc.cli import edit_commands

        return edit_commands
    if name == "config_command":
        from nsml_hpc.cli import config_command

        return config_command
    if name == "completion":
        from nsml_hpc.cli import completion

        return completion
    if name == "tui_command":
        from nsml_hpc.cli import tui_command

        return tui_command
    if name == "catalog_commands":
        from nsml_hpc.cli import catalog_commands

        return catalog_commands
    if name == "hparam_commands":
        from nsml_hpc.cli import hparam_commands

        return hparam_commands
    if name == "dataset_commands":
        from nsml_hpc.cli import dataset_commands

        return dataset_commands
    if name == "serve_command":
        from nsml_hpc.cli import serve_command

        return serve_command
    raise KeyError(name)


def _command_word(words: Sequence[str]) -> str | None:
    """The command a command line names (its first word that is not an option)."""
    for word in words:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word
    return None


def build_parser(words: Sequence[str] | None = None) -> Parser:
    """The whole parser; given a command line (``words``), only its command's module is
    imported and registered, every other command is listed by its summary alone."""
    parser = Parser(prog="nsml-hpc", description="NSML for Slurm: train, follow, compare.")
    parser.add_argument("--version", action="version", version=f"nsml-hpc {__version__}")
    add_verbose_flag(parser)
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    commands = Commands(subparsers)
    wanted = None if words is None else _command_word(words)
    for module, names in COMMAND_INDEX.items():
        if words is None:
            command_module(module).register(commands)
            continue
        if wanted in names:  # the others of its module: listed, not built
            command_module(module).register(Commands(subparsers, only=wanted))
            continue
        for name in names:
            subparsers.add_parser(name, help=COMMAND_SUMMARIES[name], add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["__complete"]:  # the shells' completion scripts: silent, always 0
        from nsml_hpc.cli.completion import run_complete

        return run_complete(words[1:], build_parser)
    try:
        args = build_parser(words).parse_args(words)
        from nsml_hpc.logs import configure as configure_logging

        configure_logging(getattr(args, "verbose", 0))
        return int(args.func(args))
    except NsmlError as error:
        print(f"nsml-hpc: error: {error}", file=sys.stderr)
        return exit_code(error)
    except KeyboardInterrupt:
        print("nsml-hpc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
