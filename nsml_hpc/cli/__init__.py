"""``nsml-hpc``: a thin command line over the library. Each command opens the workspace, calls
library functions, and prints; errors become one line on stderr and a non-zero exit code.

Commands live in one module per feature, each with a ``register(commands)`` function listed
in ``COMMAND_MODULES``.

Exit codes: each error's, from the table beside the error tree (:data:`nsml_hpc.errors.EXIT_CODES`:
1 other, 2 bad input, 3 not found, 4 Slurm/backend, 5 config/catalog, 6 not yours: another
user's session); 130 interrupted.
``submit --follow`` exits with the job's own exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from nsml_hpc import __version__
from nsml_hpc.cli import (
    catalog_commands,
    cluster_commands,
    completion,
    config_command,
    dataset_commands,
    edit_commands,
    experiment_commands,
    export_command,
    hparam_commands,
    serve_command,
    session_commands,
    snapshot_commands,
    tui_command,
)
from nsml_hpc.cli.common import Commands, Parser, add_verbose_flag
from nsml_hpc.errors import NsmlError, exit_code
from nsml_hpc.logs import configure as configure_logging

COMMAND_MODULES = [
    session_commands,
    cluster_commands,
    snapshot_commands,
    experiment_commands,
    export_command,
    edit_commands,
    config_command,
    completion,
    tui_command,
    catalog_commands,
    hparam_commands,
    dataset_commands,
    serve_command,
]


def build_parser() -> Parser:
    parser = Parser(prog="nsml-hpc", description="NSML for Slurm: train, follow, compare.")
    parser.add_argument("--version", action="version", version=f"nsml-hpc {__version__}")
    add_verbose_flag(parser)
    commands = Commands(parser.add_subparsers(dest="command", required=True, parser_class=Parser))
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["__complete"]:  # the shells' completion scripts: silent, always 0
        return completion.run_complete(words[1:], build_parser)
    try:
        args = build_parser().parse_args(argv)
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
