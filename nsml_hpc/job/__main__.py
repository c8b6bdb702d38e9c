"""``python -m nsml_hpc.job RUN_DIR [--task] [-- COMMAND...]``: the job wrapper
(:mod:`nsml_hpc.job.wrapper`) or, with ``--task``, one task of a multi-node launch
(:mod:`nsml_hpc.job.task`).

- ``RUN_DIR``: run the session's script (launch mode plain).
- ``RUN_DIR -- COMMAND...``: supervise COMMAND (``srun ...``) instead of the script.
- ``RUN_DIR --task [-- LAUNCHER...]``: one task of a multi-node launch (started by srun).
"""

from __future__ import annotations

import sys
from pathlib import Path

from nsml_hpc.job.task import run_task
from nsml_hpc.job.wrapper import run

USAGE = "usage: python -m nsml_hpc.job RUN_DIR [--task] [-- COMMAND...]"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    head, command = args, None
    if "--" in args:
        head, command = args[: args.index("--")], args[args.index("--") + 1 :]
    if len(head) == 2 and head[1] == "--task":
        return run_task(Path(head[0]), command or [])
    if len(head) != 1 or head[0].startswith("-") or (command is not None and not command):
        print(USAGE, file=sys.stderr)
        return 2
    return run(Path(head[0]), command)


if __name__ == "__main__":
    sys.exit(main())
