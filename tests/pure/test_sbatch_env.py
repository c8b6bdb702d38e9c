"""Which SBATCH_* variables sbatch must not see: those that would override a #SBATCH line
nsml-hpc rendered, and those that would break the run directory contract."""

from __future__ import annotations

import subprocess

from nsml_hpc.backends.remote_shell import remote_command
from nsml_hpc.backends.runner import LocalRunner
from nsml_hpc.backends.sbatch_env import directive_options, variables_to_remove
from nsml_hpc.job.spec import Resources, SessionSpec
from nsml_hpc.submit.render import ScriptContext, render_script

CONTEXT = ScriptContext("p/1", "/runs/p/1", "/usr/bin/python3", "/runs/p/1/.nsml/python")


def _script(**resources: object) -> str:
    spec = SessionSpec(project="p", script="t.py", resources=Resources(**resources))  # type: ignore[arg-type]
    return render_script(spec, CONTEXT)


def test_the_options_of_a_rendered_script_are_read_in_order():
    options = directive_options(_script(gpus=2, partition="debug", time="10"))
    assert options[:4] == ["job-name", "output", "chdir", "open-mode"]
    assert {"gres", "partition", "time", "nodes"} <= set(options)


def test_what_was_asked_is_protected_and_what_was_not_is_left_to_the_user():
    asked = variables_to_remove(_script(gpus=2, partition="debug", time="10", account="lab"))
    assert {"SBATCH_PARTITION", "SBATCH_TIMELIMIT", "SBATCH_ACCOUNT", "SBATCH_GPUS"} <= set(asked)
    assert {"SBATCH_GRES", "SBATCH_GPUS_PER_NODE", "SBATCH_OUTPUT", "SBATCH_ERROR"} <= set(asked)
    left = variables_to_remove(_script())
    assert not {"SBATCH_PARTITION", "SBATCH_TIMELIMIT", "SBATCH_ACCOUNT", "SBATCH_QOS"} & set(left)
    # never wanted, whatever was asked
    assert {"SBATCH_WAIT", "SBATCH_INPUT", "SBATCH_ARRAY_INX", "SBATCH_ERROR"} <= set(left)


def test_directives_after_the_first_command_are_not_directives():
    script = "#!/bin/bash\n#SBATCH --partition=a\necho hi\n#SBATCH --qos=b\n"
    assert directive_options(script) == ["partition"]


PRINT = ["sh", "-c", 'printf "%s|%s|%s" "${SBATCH_PARTITION-unset}" "$SLURM_TIME_FORMAT" "$KEEP"']


def test_a_remote_command_line_removes_and_sets_variables_in_a_real_shell():
    line = remote_command(PRINT, env={"SBATCH_PARTITION": None, "SLURM_TIME_FORMAT": "%s"})
    done = subprocess.run(
        ["sh", "-c", line],
        env={"PATH": "/usr/bin:/bin", "SBATCH_PARTITION": "small", "KEEP": "kept"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == "unset|%s|kept"


def test_the_local_runner_removes_and_sets_variables(monkeypatch):
    monkeypatch.setenv("SBATCH_PARTITION", "small")
    monkeypatch.setenv("KEEP", "kept")
    done = LocalRunner().run(
        PRINT, timeout=30, env={"SBATCH_PARTITION": None, "SLURM_TIME_FORMAT": "%s"}
    )
    assert done.stdout == "unset|%s|kept"
