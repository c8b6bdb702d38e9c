"""Which of sbatch's input environment variables a submission must not see.

sbatch lets ``SBATCH_*`` variables override the ``#SBATCH`` lines of a script (``man sbatch``,
INPUT ENVIRONMENT VARIABLES), so a user's ``SBATCH_PARTITION=small`` would silently move a job
that nsml-hpc rendered with ``#SBATCH --partition=debug``. The precedence nsml-hpc keeps
(docs/user-guide.md, "Where resources come from"):

1. what the command line (or the cluster profile's defaults) asked for, written as an
   ``#SBATCH`` line: the matching ``SBATCH_*`` variables are removed for the sbatch call;
2. what nsml-hpc did not ask for: the user's ``SBATCH_*`` variables apply as sbatch reads them
   (a site's ``SBATCH_ACCOUNT`` keeps working), then the script's own defaults, then Slurm's;
3. variables that would break the run directory contract (a log file elsewhere, an array,
   waiting for the job's end) are always removed.

Whatever Slurm then decided is read back from sacct at the next sync: the catalog records what
the job got, never only what was asked.
"""

from __future__ import annotations

import re

# The option of each #SBATCH line nsml-hpc renders -> the variables that would override it.
OPTION_VARIABLES: dict[str, tuple[str, ...]] = {
    "job-name": ("SBATCH_JOB_NAME",),
    "output": ("SBATCH_OUTPUT", "SBATCH_ERROR"),  # stdout and stderr both go to the run dir
    "open-mode": ("SBATCH_OPEN_MODE",),
    "array": ("SBATCH_ARRAY_INX",),
    "gres": ("SBATCH_GRES", "SBATCH_GPUS", "SBATCH_GPUS_PER_NODE", "SBATCH_GPUS_PER_TASK"),
    "cpus-per-gpu": ("SBATCH_CPUS_PER_GPU",),
    "mem": ("SBATCH_MEM_PER_NODE", "SBATCH_MEM_PER_CPU", "SBATCH_MEM_PER_GPU"),
    "time": ("SBATCH_TIMELIMIT",),
    "partition": ("SBATCH_PARTITION",),
    "account": ("SBATCH_ACCOUNT",),
    "qos": ("SBATCH_QOS",),
    "constraint": ("SBATCH_CONSTRAINT",),
    "signal": ("SBATCH_SIGNAL",),
    "requeue": ("SBATCH_REQUEUE", "SBATCH_NO_REQUEUE"),
    "no-requeue": ("SBATCH_REQUEUE", "SBATCH_NO_REQUEUE"),
}
# Never wanted: sbatch --wait would block the submit, an input file or an array index would
# change what the job is, an error file would take stderr out of the run directory.
ALWAYS_REMOVED = ("SBATCH_WAIT", "SBATCH_INPUT", "SBATCH_ARRAY_INX", "SBATCH_ERROR")

_DIRECTIVE = re.compile(r"^#SBATCH\s+--(?P<option>[a-z][a-z-]*)(?:[=\s]|$)")
_SCRIPT_LINE = re.compile(r"^\s*[^#\s]")


def directive_options(script: str) -> list[str]:
    """The long options of the script's ``#SBATCH`` lines, in order (sbatch stops reading
    them at the first command line, and so does this)."""
    options: list[str] = []
    for line in script.splitlines()[1:]:
        if _SCRIPT_LINE.match(line):
            break
        match = _DIRECTIVE.match(line)
        if match:
            options.append(match.group("option"))
    return options


def variables_to_remove(script: str) -> list[str]:
    """The ``SBATCH_*`` variables to remove from sbatch's environment for ``script``: for an
    option without an entry in OPTION_VARIABLES (``--exclusive``, ``--reservation``, an
    ``--sbatch-arg`` such as ``--hint``) the variable sbatch names after it
    (``SBATCH_EXCLUSIVE``, ``SBATCH_RESERVATION``, ``SBATCH_HINT``)."""
    names = dict.fromkeys(ALWAYS_REMOVED)
    for option in directive_options(script):
        default = ("SBATCH_" + option.upper().replace("-", "_"),)
        names.update(dict.fromkeys(OPTION_VARIABLES.get(option, default)))
    return sorted(names)
