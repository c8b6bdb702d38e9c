"""``--sbatch-arg``: the sbatch options nsml-hpc does not model, passed through one per value.

A value becomes one ``#SBATCH`` line, so it is checked as strictly as the directives we render
ourselves: exactly one long option (``--name`` or ``--name=value``), no whitespace, quotes,
backslashes or control characters (a newline would start a directive of its own, a space a
second option). Options nsml-hpc models are refused with a pointer to its own flag, and so are
the ones it must set itself (``--output``, ``--chdir``, ``--array``...). sbatch reads directive
lines with ``getopt_long``, which accepts any unambiguous abbreviation (``--part=gpu`` is
``--partition=gpu``), so a name that abbreviates a refused option is refused too. Names sbatch
22.05 does not know are let through (newer Slurm releases add options; sbatch itself refuses a
wrong one). Standard library only: :mod:`nsml_hpc.job.spec` validates with it.
"""

from __future__ import annotations

import re

from nsml_hpc.errors import SpecError

# sbatch 22.05's long options (``sbatch --help`` and its manual page).
SBATCH_OPTIONS = frozenset(
    {
        "account",
        "acctg-freq",
        "array",
        "batch",
        "bb",
        "bbf",
        "begin",
        "chdir",
        "cluster-constraint",
        "clusters",
        "comment",
        "constraint",
        "container",
        "contiguous",
        "core-spec",
        "cores-per-socket",
        "cpu-freq",
        "cpus-per-gpu",
        "cpus-per-task",
        "deadline",
        "delay-boot",
        "dependency",
        "distribution",
        "error",
        "exclude",
        "exclusive",
        "export",
        "export-file",
        "extra-node-info",
        "get-user-env",
        "gid",
        "gpu-bind",
        "gpu-freq",
        "gpus",
        "gpus-per-node",
        "gpus-per-socket",
        "gpus-per-task",
        "gres",
        "gres-flags",
        "help",
        "hint",
        "hold",
        "ignore-pbs",
        "input",
        "job-name",
        "kill-on-invalid-dep",
        "licenses",
        "mail-type",
        "mail-user",
        "mcs-label",
        "mem",
        "mem-bind",
        "mem-per-cpu",
        "mem-per-gpu",
        "mincpus",
        "network",
        "nice",
        "no-kill",
        "no-requeue",
        "nodefile",
        "nodelist",
        "nodes",
        "ntasks",
        "ntasks-per-core",
        "ntasks-per-gpu",
        "ntasks-per-node",
        "ntasks-per-socket",
        "open-mode",
        "output",
        "overcommit",
        "oversubscribe",
        "parsable",
        "partition",
        "power",
        "prefer",
        "priority",
        "profile",
        "propagate",
        "qos",
        "quiet",
        "reboot",
        "requeue",
        "reservation",
        "signal",
        "sockets-per-node",
        "spread-job",
        "switches",
        "test-only",
        "thread-spec",
        "threads-per-core",
        "time",
        "time-min",
        "tmp",
        "uid",
        "usage",
        "use-min-nodes",
        "verbose",
        "version",
        "wait",
        "wait-all-nodes",
        "wckey",
        "wrap",
    }
)

# Options nsml-hpc models: the flag to use instead.
MODELED = {
    "account": "--account",
    "constraint": "--constraint",
    "cpus-per-gpu": "--cpus-per-gpu",
    "cpus-per-task": "--cpus-per-task",
    "dependency": "--dependency or --after",
    "exclusive": "--exclusive",
    "gpus": "--gpus (GPUs per node; with --nodes for more than one node)",
    "gpus-per-node": "--gpus-per-node",
    "gres": "--gpus / --gpus-per-node (TYPE:N for a GPU type)",
    "mail-type": "--mail-type",
    "mail-user": "--mail-user",
    "mem": "--mem",
    "nodes": "--nodes",
    "ntasks-per-node": "--ntasks-per-node",
    "partition": "--partition",
    "qos": "--qos",
    "reservation": "--reservation",
    "signal": "--grace",
    "requeue": "--no-requeue / --max-requeues",
    "no-requeue": "--no-requeue",
    "time": "--time",
}
# Options nsml-hpc sets itself (the run directory, the job's name, the array of a sweep) or
# that make no sense in a batch script's directives: why they are refused.
SET_BY_NSML = {
    "array": "a sweep makes the array (nsml-hpc sweep)",
    "chdir": "the job runs in its run directory",
    "clusters": "choose the cluster with --cluster",
    "error": "stdout and stderr stay together in the run directory's output file",
    "gid": "a session runs as the submitting user",
    "help": "it is not a job option",
    "job-name": "the job is named after its session",
    "open-mode": "the run directory's output file is appended to across requeues",
    "output": "the job's output goes to the run directory",
    "parsable": "it is not a job option",
    "test-only": "it is not a job option (--partition auto asks sbatch --test-only itself)",
    "uid": "a session runs as the submitting user",
    "usage": "it is not a job option",
    "version": "it is not a job option",
    "wait": "nsml-hpc follows a session with --follow",
    "wrap": "the session's script is the job",
}
# In a launch mode other than plain, nsml-hpc sets the tasks per node itself.
TASK_LAYOUT = frozenset({"ntasks", "ntasks-per-core", "ntasks-per-gpu", "ntasks-per-socket"})

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
_UNSAFE_VALUE = re.compile(r"[\s\x00-\x1f\x7f\"'\\]")
MAX_VALUE = 1000


def _refused(text: str, why: str) -> SpecError:
    return SpecError(f"--sbatch-arg {text!r}: {why}")


def split_option(text: str) -> tuple[str, str | None]:
    """``--name=value`` -> ``("name", "value")``, ``--name`` -> ``("name", None)``; SpecError
    for anything that is not exactly one long option safe on a directive line."""
    if not isinstance(text, str) or not text:
        raise _refused(str(text), "give one sbatch option, such as --comment=note")
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise _refused(text, "control characters (a newline, a tab) cannot reach an #SBATCH line")
    if re.search(r"\s", text):
        raise _refused(
            text, "one option per --sbatch-arg, without spaces (repeat the flag for another)"
        )
    if not text.startswith("--"):
        if text.startswith("-"):
            raise _refused(text, "use sbatch's long form (--name=value), not a short option")
        raise _refused(text, "an sbatch option starts with --, such as --comment=note")
    name, equals, value = text[2:].partition("=")
    if not _NAME.fullmatch(name):
        raise _refused(text, "an option name is lowercase letters, digits and '-'")
    if equals and not value:
        raise _refused(text, f"--{name}= has no value (write --{name} for a flag)")
    if _UNSAFE_VALUE.search(value) or len(value) > MAX_VALUE:
        raise _refused(
            text,
            f"the value cannot hold quotes, backslashes or whitespace (at most {MAX_VALUE} "
            "characters)",
        )
    return name, (value if equals else None)


def _targets(name: str) -> list[str]:
    """The sbatch options ``--name`` can stand for: itself, or those it abbreviates."""
    if name in SBATCH_OPTIONS:
        return [name]
    return sorted(option for option in SBATCH_OPTIONS if option.startswith(name))


def validate_sbatch_arg(text: str, *, launch: str = "plain") -> str:
    """``text`` if it may be passed through; SpecError (one line) otherwise."""
    name, _value = split_option(text)
    targets = _targets(name)
    for option in targets:
        if option in MODELED:
            shown = f" (--{name} abbreviates --{option})" if option != name else ""
            raise _refused(text, f"nsml-hpc models this option{shown}; use {MODELED[option]}")
        if option in SET_BY_NSML:
            shown = f" (--{name} abbreviates --{option})" if option != name else ""
            raise _refused(text, f"nsml-hpc sets --{option} itself{shown}: {SET_BY_NSML[option]}")
        if launch != "plain" and option in TASK_LAYOUT:
            raise _refused(
                text,
                f"--launch {launch} lays out the tasks itself; use --ntasks-per-node "
                "(or --launch plain)",
            )
    if len(targets) > 1:
        raise _refused(
            text,
            f"--{name} is ambiguous for sbatch ({', '.join('--' + t for t in targets[:4])}"
            f"{', ...' if len(targets) > 4 else ''}); write the option in full",
        )
    return text


def option_name(text: str) -> str:
    """The option a validated ``--sbatch-arg`` value sets (its full name where known)."""
    name, _ = split_option(text)
    targets = _targets(name)
    return targets[0] if len(targets) == 1 else name


def directive(text: str) -> tuple[str, str]:
    """A validated value as a (key, value) pair of the renderer (value "" for a flag)."""
    name, value = split_option(text)
    return name, value or ""
