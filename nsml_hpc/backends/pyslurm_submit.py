"""A rendered job script's ``#SBATCH`` lines as ``pyslurm.JobSubmitDescription`` fields (pure).

pyslurm's own ``load_sbatch_options()`` cannot be used: in 22.5 and 25.11 alike it maps
``--partition`` to a ``partition`` attribute that does not exist (``AttributeError``), passes
``--time=5`` on as the string "5" (``TypeError: an integer is required``) and splits values at
``=`` and ``#``. nsml-hpc renders a closed set of directives (``nsml_hpc.submit.render``), always as
``--key=value`` or ``--flag``; each has its field here, and any other directive is refused in
one line rather than dropped: a job must not run without something its script asked for.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from typing import Any

from nsml_hpc.errors import BackendError


def read_directives(script: str) -> list[tuple[str, str]]:
    """``(key, value)`` of each ``#SBATCH --key[=value]`` line, up to the first command line
    (where sbatch stops reading them too)."""
    found: list[tuple[str, str]] = []
    for raw in script.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            break
        if not line.startswith("#SBATCH"):
            continue
        option = line.removeprefix("#SBATCH").strip()
        if not option.startswith("--"):
            raise BackendError(f"the pyslurm backend reads only --long options, not {line!r}")
        key, _, value = option.removeprefix("--").partition("=")
        found.append((key, value))
    return found


def warn_signal(value: str) -> dict[str, Any]:
    """``--signal=[B:|R:]SIG[@seconds]`` as pyslurm's signal dict, the signal as a number
    (the one form pyslurm 22.5 and 25.11 both accept)."""
    flags, _, rest = value.rpartition(":") if ":" in value else ("", "", value)
    name, _, seconds = rest.partition("@")
    if name.isdigit():
        number = int(name)
    else:
        upper = name.upper()
        try:
            number = signal.Signals[upper if upper.startswith("SIG") else f"SIG{upper}"].value
        except KeyError:
            raise BackendError(f"--signal={value}: unknown signal {name!r}") from None
    warning: dict[str, Any] = {"signal": number, "time": int(seconds) if seconds else 60}
    if "B" in flags.upper():
        warning["batch_only"] = True
    if "R" in flags.upper():
        warning["allow_reservation_overlap"] = True
    return warning


def _minutes(value: str) -> int | str:
    """``--time``: plain minutes as an int (pyslurm passes a digit string through to C)."""
    return int(value) if value.isdigit() else value


def _same(value: str) -> str:
    return value


# directive -> (JobSubmitDescription field, value conversion)
FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "job-name": ("name", _same),
    "output": ("standard_output", _same),
    "error": ("standard_error", _same),
    "chdir": ("working_directory", _same),
    "open-mode": ("log_files_open_mode", _same),
    "array": ("array", _same),
    "nodes": ("nodes", _same),
    "gres": ("gres_per_node", _same),
    "cpus-per-gpu": ("cpus_per_gpu", int),
    "mem": ("memory_per_node", _same),
    "time": ("time_limit", _minutes),
    "partition": ("partitions", _same),
    "account": ("account", _same),
    "qos": ("qos", _same),
    "constraint": ("constraints", _same),
    "signal": ("signal", warn_signal),
    "requeue": ("is_requeueable", lambda _: True),
    "no-requeue": ("is_requeueable", lambda _: False),
}


def submit_fields(script_path: str, script: str) -> dict[str, Any]:
    """Keyword arguments of ``JobSubmitDescription`` for the script at ``script_path``.

    pyslurm asks for ONE task when none is given, where sbatch leaves the count to Slurm
    (one task per node): with ``--nodes=N`` the job gets N tasks, so ``SLURM_NTASKS`` and an
    ``srun`` inside the job mean one task per node, as under sbatch."""
    fields: dict[str, Any] = {"script": script_path}
    for key, value in read_directives(script):
        if key not in FIELDS:
            raise BackendError(
                f"the pyslurm backend cannot submit #SBATCH --{key} (it maps "
                f"{', '.join(sorted(FIELDS))}); use the local backend for this job"
            )
        field, convert = FIELDS[key]
        fields[field] = convert(value)
    nodes = str(fields.get("nodes", "")).split("-", 1)[0]
    if nodes.isdigit() and int(nodes) > 1:
        fields["ntasks"] = int(nodes)
    return fields


def sbatch_environment(
    environ: Mapping[str, str], name: str | None, submit_dir: str, host: str, priority: int
) -> dict[str, str]:
    """The job's environment as sbatch sends it: everything of ``environ`` plus the variables
    sbatch adds (pyslurm does not): SLURM_JOB_NAME (slurmd's ``%x`` in file names reads it),
    SLURM_SUBMIT_DIR, SLURM_SUBMIT_HOST, SLURM_PRIO_PROCESS. Given as a dict, pyslurm sends
    it as it is (a string would also make slurmd load the user's login environment)."""
    added = {
        "SLURM_SUBMIT_DIR": submit_dir,
        "SLURM_SUBMIT_HOST": host,
        "SLURM_PRIO_PROCESS": str(priority),
    }
    if name:
        added["SLURM_JOB_NAME"] = name
    return {**environ, **added}
