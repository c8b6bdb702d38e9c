"""Render a session into the text of an sbatch script (Jinja, ``sbatch_templates/``).

Directive values were validated by :mod:`nsml_hpc.job.spec`; this module checks once more that
nothing with whitespace or control characters reaches an ``#SBATCH`` line, and ``shlex.quote``s
every value placed in the shell. The script's arguments never appear in the script at all: the
job wrapper reads them from ``session.json`` and passes them to ``execve`` untouched.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import cache
from importlib import resources

import jinja2

from nsml_hpc import __version__
from nsml_hpc.errors import SpecError
from nsml_hpc.job import layout
from nsml_hpc.job.sbatch_options import directive
from nsml_hpc.job.spec import EnvStep, Resources, SessionSpec, ranks_per_node, warning_seconds

TEMPLATE_PACKAGE = "nsml_hpc.sbatch_templates"
TEMPLATE_NAME = "job.sbatch.j2"
ARRAY_TEMPLATE_NAME = "array.sbatch.j2"
# Characters that may never reach a directive line: whitespace, control characters, quotes and
# backslash. Paths are stricter: '%' (Slurm expands it in --output names) and '$' are refused too.
_DIRECTIVE_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f\"'\\]")
_PATH_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f\"'\\%$`]")


@dataclass(frozen=True)
class ScriptContext:
    """What the template needs besides the spec, decided at submit time."""

    session_name: str
    run_dir: str  # absolute, as the compute nodes see it
    wrapper_python: str  # interpreter that runs ``nsml_hpc.job`` on the compute node
    api_path: str  # folder put on the job's PYTHONPATH so ``import nsml_hpc`` works anywhere


@dataclass(frozen=True)
class ArrayContext:
    """A sweep chunk: one array task per session, task i runs in ``run_dirs[i]``."""

    sweep_name: str
    sweep_dir: str
    run_dirs: list[str]
    session_names: list[str]
    wrapper_python: str
    array: str  # the --array value, e.g. 0-3%2
    api_path: str  # the sweep's ONE copy of the in-job package (``<sweep dir>/.nsml/python``)


def check_cluster_path(label: str, path: str) -> str:
    """Refuse paths Slurm's directive parser or file-name patterns would mangle."""
    if not path.startswith("/") or _PATH_UNSAFE.search(path):
        raise SpecError(
            f"{label} {path!r} must be an absolute path without spaces, quotes, '%', '$' "
            "or control characters"
        )
    return path


def sbatch_directives(spec: SessionSpec, context: ScriptContext) -> list[tuple[str, str]]:
    """The ``#SBATCH --key=value`` pairs for ``spec``, in a stable order (an empty value is a
    flag without one, such as ``--requeue``)."""
    return _directives(
        spec,
        [
            ("job-name", context.session_name),
            ("output", f"{context.run_dir}/{layout.SLURM_OUTPUT_PATTERN}"),
            ("chdir", context.run_dir),
            ("open-mode", "append"),
        ],
    )


def array_directives(spec: SessionSpec, context: ArrayContext) -> list[tuple[str, str]]:
    return _directives(
        spec,
        [
            ("job-name", context.sweep_name),
            ("output", f"{context.sweep_dir}/{layout.ARRAY_OUTPUT_PATTERN}"),
            ("chdir", context.sweep_dir),
            ("open-mode", "append"),
            ("array", context.array),
        ],
    )


def resource_directives(spec: SessionSpec) -> list[tuple[str, str]]:
    """Just the resource requests (for ``sbatch --test-only`` and the scripts): no
    dependency, mail or preemption settings."""
    return _directives(spec, [], preemption=False)


def directive_args(directives: list[tuple[str, str]]) -> list[str]:
    """``[("nodes", "2"), ("exclusive", "")]`` -> ``["--nodes=2", "--exclusive"]``."""
    return [f"--{key}={value}" if value else f"--{key}" for key, value in directives]


def gres_value(res: Resources) -> str | None:
    """``gpu:4`` or ``gpu:a100:4`` (per node), or None without GPUs."""
    if not res.gpus:
        return None
    return f"gpu:{res.gpu_type}:{res.gpus}" if res.gpu_type else f"gpu:{res.gpus}"


def tasks_per_node(spec: SessionSpec) -> int | None:
    """``--ntasks-per-node``: what the user gave in plain mode, else what the launch starts
    (the ranks of srun modes, one torchrun per node)."""
    if spec.launch == "plain":
        return spec.resources.ntasks_per_node
    return 1 if spec.launch == "torchrun" else ranks_per_node(spec.resources, spec.launch)


def _directives(
    spec: SessionSpec, head: list[tuple[str, str | int | None]], *, preemption: bool = True
) -> list[tuple[str, str]]:
    res = spec.resources
    grace = warning_seconds(spec)
    pairs: list[tuple[str, str | int | None]] = [
        *head,
        ("nodes", res.nodes),
        ("gres", gres_value(res)),
        ("ntasks-per-node", tasks_per_node(spec)),
        ("cpus-per-task", res.cpus_per_task),
        ("cpus-per-gpu", res.cpus_per_gpu),
        ("mem", res.mem),
        ("time", res.time),
        ("partition", res.partition),
        ("account", res.account),
        ("qos", res.qos),
        ("constraint", res.constraint),
        ("exclusive", "" if res.exclusive else None),
        ("reservation", res.reservation),
    ]
    if preemption:
        # USR2 (NCCL takes USR1) to the batch shell, which exec's the wrapper: it asks the
        # training code for a snapshot and requeues the job (see nsml_hpc/job/wrapper.py).
        pairs += [
            ("dependency", res.dependency),
            ("mail-type", res.mail_type),
            ("mail-user", res.mail_user),
            ("signal", f"B:USR2@{grace}" if grace > 0 else None),
            ("requeue" if spec.preemption.requeue else "no-requeue", ""),
        ]
    # --sbatch-arg values last, in the order given (validated by nsml_hpc.job.sbatch_options).
    pairs += [directive(text) for text in res.sbatch_args]
    directives = [(key, str(value)) for key, value in pairs if value is not None]
    for key, value in directives:
        if _DIRECTIVE_UNSAFE.search(value):
            raise SpecError(f"refusing to render --{key}={value!r}: unsafe characters")
    return directives


def launch_lines(spec: SessionSpec, wrapper_python: str, run_dir_word: str) -> list[str]:
    """The end of the script for a launch mode other than plain (plain: the templates' own
    ``exec`` of the wrapper). ``run_dir_word`` is the run directory as one shell word.

    The wrapper on the first node runs ``srun``, which starts the job wrapper again on every
    node (``--task``): there it runs one rank of the script (srun modes) or torchrun.
    Everything here is fixed text, numbers and quoted paths; the script's arguments are read
    from session.json by the task wrappers, never from this shell."""
    if spec.launch == "plain":
        return []
    res = spec.resources
    nodes, ranks = res.nodes, ranks_per_node(res, spec.launch)
    python = shlex.quote(wrapper_python)
    step_tasks = 1 if spec.launch == "torchrun" else ranks
    lines = [f"# Launch mode {spec.launch} (docs/multi-node.md):"]
    if spec.launch == "torchrun":
        lines += [
            f"# srun starts the job wrapper once on each of the {nodes} node(s); each runs "
            f"torchrun, which starts {ranks}",
            "# process(es) there and finds the other nodes through a c10d rendezvous (id: "
            "the job id)",
            "# at MASTER_ADDR:MASTER_PORT.",
        ]
    else:
        lines += [
            f"# srun starts {ranks} task(s) on each of the {nodes} node(s), each a job wrapper "
            "running one rank",
            f"# of the script (RANK=SLURM_PROCID, LOCAL_RANK=SLURM_LOCALID, WORLD_SIZE="
            f"{nodes * ranks}).",
        ]
    lines += [
        "# The wrapper here, on the first node, relays their events and handles Slurm's warning.",
        "# Rendezvous: the first node's address (its NodeAddr; node names need not resolve) and a",
        "# port that is free there.",
        f"MASTER_ADDR=$({python} -m nsml_hpc.job.rendezvous addr)",
        f"MASTER_PORT=$({python} -m nsml_hpc.job.rendezvous port)",
        "export MASTER_ADDR MASTER_PORT",
        f"exec {python} -m nsml_hpc.job {run_dir_word} -- \\",
        f"  srun --nodes={nodes} --ntasks-per-node={step_tasks} --kill-on-bad-exit=1 \\",
    ]
    task = f"  {python} -m nsml_hpc.job {run_dir_word} --task"
    if spec.launch != "torchrun":
        return [*lines, task]
    return [
        *lines,
        f"{task} -- \\",
        f"  torchrun --nnodes={nodes} --nproc-per-node={ranks} --rdzv-backend=c10d "
        '--rdzv-id="$SLURM_JOB_ID" \\',
        '  --rdzv-endpoint="$MASTER_ADDR:$MASTER_PORT"',
    ]


# Where the job looks for the site's module system when ``module`` is not defined (it is a
# shell function that only login shells get, or inherit through BASH_ENV / an exported
# function): what a submitting shell exported first, then the site's profile scripts (they
# also set MODULEPATH from the site's list), then the bare init scripts of Lmod and of
# Environment Modules.
MODULE_INIT_SCRIPTS = (
    "${LMOD_PKG:-/nonexistent}/init/bash",
    "${MODULESHOME:-/nonexistent}/init/bash",
    "/etc/profile.d/lmod.sh",
    "/etc/profile.d/modules.sh",
    "/usr/share/lmod/lmod/init/bash",
    "/usr/share/modules/init/bash",
)
# Where the job looks for conda when a non-login shell does not have it on PATH.
CONDA_PLACES = (
    "${CONDA_EXE:-/nonexistent}",
    "$HOME/miniforge3/bin/conda",
    "$HOME/miniconda3/bin/conda",
    "$HOME/anaconda3/bin/conda",
    "/opt/conda/bin/conda",
)
MISSING_TOOL_EXIT = 127  # what a shell returns for a command it cannot find


def _searched(places: tuple[str, ...]) -> str:
    return ", ".join(place.replace(":-/nonexistent", "").replace("$", "\\$") for place in places)


def module_init_lines() -> list[str]:
    """Shell lines that define ``module`` from the site's init script, or end the job with
    exit 127 and one line saying what was searched."""
    places = " \\\n      ".join(f'"{place}"' for place in MODULE_INIT_SCRIPTS)
    message = (
        "nsml-hpc: error: --module needs the module command, which this job's shell does not "
        f"have, and no module system init script was found (searched: "
        f"{_searched(MODULE_INIT_SCRIPTS)})"
    )
    return [
        "# `module` is a shell function that only login shells define: initialise the site's",
        "# module system when the job was submitted from cron, a script or over ssh.",
        "if ! declare -F module >/dev/null; then",
        "  set +e  # site init scripts are not written for set -e",
        f"  for __nsml_init in {places}; do",
        '    if [ -r "$__nsml_init" ]; then',
        '      . "$__nsml_init" >/dev/null',
        "      if declare -F module >/dev/null; then break; fi",
        "    fi",
        "  done",
        "  set -e",
        "  if ! declare -F module >/dev/null; then",
        f'    echo "{message}" >&2',
        f"    exit {MISSING_TOOL_EXIT}",
        "  fi",
        "fi",
    ]


def conda_init_lines() -> list[str]:
    """Shell lines that put conda on PATH when a non-login shell lacks it, or end the job with
    exit 127 and one line saying what was searched."""
    places = " \\\n      ".join(f'"{place}"' for place in CONDA_PLACES)
    message = (
        "nsml-hpc: error: --conda needs the conda command, which is not on this job's PATH, "
        f"and no conda installation was found (searched: {_searched(CONDA_PLACES)})"
    )
    return [
        "# conda is on PATH only where a shell ran conda's init: look in the usual places.",
        "if ! command -v conda >/dev/null; then",
        f"  for __nsml_conda in {places}; do",
        '    if [ -x "$__nsml_conda" ]; then PATH="${__nsml_conda%/*}:$PATH"; break; fi',
        "  done",
        "  if ! command -v conda >/dev/null; then",
        f'    echo "{message}" >&2',
        f"    exit {MISSING_TOOL_EXIT}",
        "  fi",
        "fi",
    ]


def environment_lines(steps: list[EnvStep]) -> list[str]:
    """The steps in the order given; the module system (conda) is looked for right before the
    first ``--module`` (``--conda``), so an earlier ``--setup`` line may provide it."""
    lines: list[str] = []
    initialised: set[str] = set()
    for step in steps:
        if step.kind in ("module", "conda") and step.kind not in initialised:
            initialised.add(step.kind)
            lines += module_init_lines() if step.kind == "module" else conda_init_lines()
        if step.kind == "setup":
            lines.append(step.value)  # the user's own job code, on purpose
        elif step.kind == "module":
            lines.append(f"module load {shlex.quote(step.value)}")
        elif step.kind == "venv":
            lines.append(f"source {shlex.quote(step.value)}/bin/activate")
        elif step.kind == "conda":
            lines.append('eval "$(conda shell.bash hook)"')
            lines.append(f"conda activate {shlex.quote(step.value)}")
    return lines


@cache
def _template(name: str = TEMPLATE_NAME) -> jinja2.Template:
    source = resources.files(TEMPLATE_PACKAGE).joinpath(name).read_text("utf-8")
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - shell text, not HTML; values are shlex-quoted
        keep_trailing_newline=True,
        trim_blocks=True,
    )
    env.filters["q"] = lambda value: shlex.quote(str(value))
    return env.from_string(source)


def render_script(spec: SessionSpec, context: ScriptContext) -> str:
    """The sbatch script text for ``spec``; deterministic for the same inputs."""
    check_cluster_path("run directory", context.run_dir)
    return _template().render(
        session_name=context.session_name,
        version=__version__,
        run_dir=context.run_dir,
        directives=sbatch_directives(spec, context),
        environment=environment_lines(spec.environment),
        wrapper_python=context.wrapper_python,
        api_path=context.api_path,
        layout=layout.template_names(),
        launch=launch_lines(spec, context.wrapper_python, shlex.quote(context.run_dir)),
    )


def render_array_script(spec: SessionSpec, context: ArrayContext) -> str:
    """The sbatch script of one sweep chunk: a job array whose task i is session i."""
    check_cluster_path("sweep directory", context.sweep_dir)
    check_cluster_path("in-job package", context.api_path)
    for run_dir in context.run_dirs:
        check_cluster_path("run directory", run_dir)
    return _template(ARRAY_TEMPLATE_NAME).render(
        sweep_name=context.sweep_name,
        sweep_dir=context.sweep_dir,
        version=__version__,
        directives=array_directives(spec, context),
        run_dirs=context.run_dirs,
        session_names=context.session_names,
        environment=environment_lines(spec.environment),
        wrapper_python=context.wrapper_python,
        api_path=context.api_path,
        layout=layout.template_names(),
        launch=launch_lines(spec, context.wrapper_python, f'"${layout.RUN_DIR_ENV}"'),
    )
