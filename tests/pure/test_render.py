"""The rendered sbatch script: golden files, and a hostile-input corpus that must never leak.

Regenerate the golden files after an intended template change with::

    NSML_HPC_UPDATE_GOLDEN=1 .venv/bin/pytest tests/pure/test_render.py

and review the diff of tests/golden/. The nsml-hpc version is stored as ``{version}``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

import nsml_hpc
from nsml_hpc.errors import SpecError
from nsml_hpc.job.spec import EnvKind, EnvStep, Preemption, Resources, SessionSpec, validate_spec
from nsml_hpc.submit.render import (
    ScriptContext,
    check_cluster_path,
    render_script,
    sbatch_directives,
)

from .conftest import GOLDEN_DIR

VERSION_PLACEHOLDER = "{version}"
UPDATE_GOLDEN = os.environ.get("NSML_HPC_UPDATE_GOLDEN") == "1"

CONTEXT = ScriptContext(
    session_name="mnist/7",
    run_dir="/shared/runs/alice/mnist/7",
    wrapper_python="/opt/nsml/bin/python",
    api_path="/shared/runs/alice/mnist/7/.nsml/python",
)

GOLDEN_SPECS = {
    "cpu_only": SessionSpec(project="mnist", script="train.py", args=["--lr", "0.1"]),
    "four_gpus": SessionSpec(
        project="mnist",
        script="train.py",
        args=["--epochs", "10"],
        resources=Resources(
            gpus=4,
            cpus_per_gpu=8,
            mem="64G",
            time="1-00:00:00",
            partition="debug",
            account="research",
            qos="normal",
            constraint="a100|h100",
        ),
    ),
    "environment": SessionSpec(
        project="mnist",
        script="train.py",
        resources=Resources(gpus=1),
        environment=[
            EnvStep("module", "cuda/12.1"),
            EnvStep("venv", "/shared/envs/torch env"),
            EnvStep("conda", "torch-2.3"),
            EnvStep("setup", "export OMP_NUM_THREADS=4"),
        ],
    ),
    # Multi-node launch modes (docs/multi-node.md) and every resource flag of issue 10.
    "multi_node_srun": SessionSpec(
        project="mnist",
        script="train.py",
        resources=Resources(gpus=2, nodes=2, ntasks_per_node=2, cpus_per_task=4),
        launch="srun",
    ),
    "multi_node_srun_per_gpu": SessionSpec(
        project="mnist",
        script="train.py",
        resources=Resources(gpus=4, nodes=2, time="4:00:00"),
        launch="srun-per-gpu",
    ),
    "multi_node_torchrun": SessionSpec(
        project="mnist",
        script="train.py",
        resources=Resources(gpus=4, gpu_type="a100", nodes=2, cpus_per_task=32, exclusive=True),
        launch="torchrun",
    ),
    "every_resource_flag": SessionSpec(
        project="mnist",
        script="train.py",
        resources=Resources(
            gpus=2,
            gpu_type="h100",
            nodes=2,
            ntasks_per_node=2,
            cpus_per_task=8,
            exclusive=True,
            dependency="afterok:123:124,afterany:99",
            reservation="maint",
            mail_type="END,FAIL",
            mail_user="alice@example.org",
            sbatch_args=["--comment=nightly", "--hint=nomultithread", "--nice=10"],
        ),
        after=["mnist/3"],
    ),
}


def _to_golden(script: str) -> str:
    return script.replace(f"nsml-hpc {nsml_hpc.__version__})", f"nsml-hpc {VERSION_PLACEHOLDER})")


def _bash_syntax_error(script: str, tmp_path: Path) -> str | None:
    path = tmp_path / "job.sbatch"
    path.write_text(script, encoding="utf-8")
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    return None if done.returncode == 0 else done.stderr


@pytest.mark.parametrize("name", sorted(GOLDEN_SPECS))
def test_rendered_script_matches_its_golden_file(name):
    spec = validate_spec(GOLDEN_SPECS[name])
    rendered = _to_golden(render_script(spec, CONTEXT))
    golden = GOLDEN_DIR / f"{name}.sbatch"
    if UPDATE_GOLDEN:
        golden.write_text(rendered, encoding="utf-8")
    assert golden.is_file(), f"missing {golden}; run with NSML_HPC_UPDATE_GOLDEN=1 to create it"
    assert rendered == golden.read_text(encoding="utf-8")


def test_golden_files_hide_the_version_behind_a_placeholder():
    first_line_2 = (GOLDEN_DIR / "cpu_only.sbatch").read_text(encoding="utf-8").splitlines()[1]
    assert first_line_2.endswith(f"(rendered by nsml-hpc {VERSION_PLACEHOLDER}).")


@pytest.mark.parametrize("name", sorted(GOLDEN_SPECS))
def test_rendered_script_is_valid_bash(name, tmp_path):
    script = render_script(GOLDEN_SPECS[name], CONTEXT)
    assert _bash_syntax_error(script, tmp_path) is None


def test_rendering_is_deterministic():
    spec = GOLDEN_SPECS["environment"]
    assert render_script(spec, CONTEXT) == render_script(spec, CONTEXT)


def test_script_arguments_never_appear_in_the_script():
    spec = SessionSpec(project="mnist", script="train.py", args=["--secret-arg", "$(id)"])
    assert "secret" not in render_script(spec, CONTEXT)
    assert "$(id)" not in render_script(spec, CONTEXT)


def test_directives_come_in_a_stable_order_without_unset_values():
    keys = [key for key, _ in sbatch_directives(GOLDEN_SPECS["cpu_only"], CONTEXT)]
    assert keys == ["job-name", "output", "chdir", "open-mode", "nodes", "signal", "requeue"]


def test_session_asks_for_a_usr2_warning_and_allows_requeue():
    lines = _directive_lines(render_script(GOLDEN_SPECS["cpu_only"], CONTEXT))
    assert "#SBATCH --signal=B:USR2@120" in lines
    assert "#SBATCH --requeue" in lines


def test_grace_defaults_to_a_quarter_of_a_short_time_limit():
    spec = replace(GOLDEN_SPECS["cpu_only"], resources=Resources(time="2"))
    assert "#SBATCH --signal=B:USR2@30" in _directive_lines(render_script(spec, CONTEXT))


def test_requeue_off_and_grace_zero_render_no_requeue_and_no_signal():
    spec = replace(GOLDEN_SPECS["cpu_only"], preemption=Preemption(grace_seconds=0, requeue=False))
    lines = _directive_lines(render_script(spec, CONTEXT))
    assert "#SBATCH --no-requeue" in lines
    assert not any(line.startswith("#SBATCH --signal") for line in lines)


@pytest.mark.parametrize(
    "policy",
    [
        Preemption(grace_seconds=-1),
        Preemption(max_requeues=-3),
        Preemption(grace_seconds=70_000),
        Preemption(grace_seconds=True),
    ],
    ids=ascii,
)
def test_bad_preemption_settings_are_refused(policy):
    with pytest.raises(SpecError):
        validate_spec(replace(GOLDEN_SPECS["cpu_only"], preemption=policy))


def test_grace_as_long_as_the_time_limit_is_refused():
    spec = replace(
        GOLDEN_SPECS["cpu_only"],
        resources=Resources(time="1"),
        preemption=Preemption(grace_seconds=60),
    )
    with pytest.raises(SpecError, match="shorter than the time limit"):
        validate_spec(spec)


# --- hostile corpus (after submitit's test fixture of nasty names) ---------------------------

HOSTILE = [
    "a'; echo foo",
    "a\n0",
    "a\n",
    'a"b',
    "a b",
    "a\tb",
    "a\rb",
    "a\x00b",
    "a\x1b[31m",
    "a\u2028b",
    "$(touch /tmp/pwned)",
    "`touch /tmp/pwned`",
    "${HOME}",
    "a\\b",
    "a;b",
    "a|b",
    "a&b",
    "%j",
    "#x",
]
ENV_KINDS: dict[str, EnvKind] = {"module": "module", "venv": "venv", "conda": "conda"}
FIELDS = [
    "partition",
    "account",
    "qos",
    "constraint",
    "project",
    "memo",
    "module",
    "venv",
    "conda",
    "reservation",
    "mail_user",
    "mail_type",
    "dependency",
    "gpu_type",
    "sbatch_arg",
]
# Fields whose accepted values reach a directive line as they are.
VERBATIM = ("constraint", "memo", "sbatch_arg")
_UNSAFE_IN_DIRECTIVE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029\"'\\]")


def _spec_with(field: str, value: str) -> SessionSpec:
    base = SessionSpec(project="mnist", script="train.py", resources=Resources(gpus=1))
    if field == "sbatch_arg":
        resources = Resources(gpus=1, sbatch_args=[f"--comment={value}"])
        return SessionSpec(project="mnist", script="train.py", resources=resources)
    if field in ("reservation", "mail_user", "mail_type", "dependency", "gpu_type"):
        new = {
            "reservation": Resources(gpus=1, reservation=value),
            "mail_user": Resources(gpus=1, mail_user=value),
            "mail_type": Resources(gpus=1, mail_type=value),
            "dependency": Resources(gpus=1, dependency=value),
            "gpu_type": Resources(gpus=1, gpu_type=value),
        }[field]
        return SessionSpec(project="mnist", script="train.py", resources=new)
    if field in ("partition", "account", "qos", "constraint"):
        resources = {
            "partition": Resources(gpus=1, partition=value),
            "account": Resources(gpus=1, account=value),
            "qos": Resources(gpus=1, qos=value),
            "constraint": Resources(gpus=1, constraint=value),
        }[field]
        return SessionSpec(project="mnist", script="train.py", resources=resources)
    if field == "project":
        return SessionSpec(project=value, script="train.py")
    if field == "memo":
        return SessionSpec(project="mnist", script="train.py", memo=value)
    kind = ENV_KINDS[field]
    return SessionSpec(project=base.project, script="train.py", environment=[EnvStep(kind, value)])


def _directive_lines(script: str) -> list[str]:
    # split on "\n" only: str.splitlines would also split on \x0b, \x1c, \u2028 and hide them
    return [line for line in script.split("\n") if line.startswith("#SBATCH")]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("value", HOSTILE, ids=ascii)
def test_hostile_value_is_refused_or_only_reaches_the_shell_quoted(field, value, tmp_path):
    spec = _spec_with(field, value)
    try:
        validate_spec(spec)
        script = render_script(spec, CONTEXT)
    except SpecError:
        return
    for line in _directive_lines(script):
        assert not _UNSAFE_IN_DIRECTIVE.search(line), line
    assert _bash_syntax_error(script, tmp_path) is None
    if field in ("module", "venv", "conda"):
        quoted = shlex.quote(value)
        assert quoted in script
        assert value not in script.replace(quoted, "")
    else:
        # accepted directive values are plain words; memo and project never reach the script
        assert field in VERBATIM or value not in script


DIRECTIVE_FIELDS = [
    "partition",
    "account",
    "qos",
    "constraint",
    "project",
    "reservation",
    "mail_user",
    "mail_type",
    "dependency",
    "gpu_type",
]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (field, value)
        for field in DIRECTIVE_FIELDS
        for value in HOSTILE
        if not (field == "constraint" and value in ("a|b", "a&b"))
    ],
    ids=ascii,
)
def test_validate_spec_alone_refuses_hostile_directive_values(field, value):
    with pytest.raises(SpecError):
        validate_spec(_spec_with(field, value))


def test_constraint_operators_pass_through_unchanged():
    spec = _spec_with("constraint", "a|b")
    assert "#SBATCH --constraint=a|b" in _directive_lines(render_script(spec, CONTEXT))


@pytest.mark.parametrize(
    "run_dir",
    [
        "/shared/runs/my run",
        "/shared/runs/%j",
        "/shared/runs/$USER",
        "/shared/runs/it's",
        '/shared/runs/"x"',
        "/shared/runs/a\nb",
        "/shared/runs/`id`",
        "/shared/runs/a\\b",
        "relative/run",
        "",
    ],
    ids=ascii,
)
def test_run_dir_that_slurm_or_the_shell_would_mangle_is_refused(run_dir):
    with pytest.raises(SpecError, match="absolute path"):
        check_cluster_path("run directory", run_dir)
    context = ScriptContext("mnist/7", run_dir, "/opt/nsml/bin/python", "/api")
    with pytest.raises(SpecError):
        render_script(GOLDEN_SPECS["cpu_only"], context)


def test_plain_absolute_run_dir_is_accepted():
    assert check_cluster_path("run directory", "/shared/runs/alice/mnist/7") == (
        "/shared/runs/alice/mnist/7"
    )


@pytest.mark.parametrize("name", ["mnist 7", "mnist\n7", "it's/7", "a\x00"], ids=ascii)
def test_session_name_with_space_quote_or_control_is_refused_before_the_job_name_line(name):
    context = ScriptContext(name, CONTEXT.run_dir, CONTEXT.wrapper_python, CONTEXT.api_path)
    with pytest.raises(SpecError, match="job-name"):
        render_script(GOLDEN_SPECS["cpu_only"], context)


def test_wrapper_and_api_paths_are_quoted_in_the_shell(tmp_path):
    context = ScriptContext(
        "mnist/7", CONTEXT.run_dir, "/opt/my python/bin/python", "/api/$(id)/x'y"
    )
    script = render_script(GOLDEN_SPECS["cpu_only"], context)
    assert shlex.quote("/opt/my python/bin/python") in script
    assert "export PYTHONPATH=" + shlex.quote("/api/$(id)/x'y") in script
    assert _bash_syntax_error(script, tmp_path) is None
