"""The job script's environment set-up, run by bash without Slurm: the search for a module
system (and for conda) when the submitting shell did not hand one over, and the one error
line (exit 127) when there is none. The real Lmod runs in tests/slurm/test_env_setup.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nsml_hpc.job.spec import EnvStep
from nsml_hpc.submit import render


def _run(lines: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "job.sh"
    script.write_text("\n".join(["#!/bin/bash", "set -eo pipefail", *lines, ""]))
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(
        ["env", "-i", *(f"{k}={v}" for k, v in {**base, **env}.items()), "bash", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _fake_init(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


def test_no_module_system_is_one_line_and_exit_127(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "MODULE_INIT_SCRIPTS", (f"{tmp_path}/none/init/bash",))
    lines = render.environment_lines([EnvStep("module", "cuda/12.1")])
    done = _run([*lines, "echo never"], tmp_path)
    assert done.returncode == 127
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("nsml-hpc: error: --module needs the module command")
    assert f"searched: {tmp_path}/none/init/bash)" in line


def test_the_first_init_script_that_defines_module_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = _fake_init(tmp_path / "a" / "bash", "false\n")  # a failing line under set -e too
    real = _fake_init(tmp_path / "b" / "bash", 'module() { echo "b: $*"; }\n')
    later = _fake_init(tmp_path / "c" / "bash", 'module() { echo "c: $*"; }\n')
    monkeypatch.setattr(render, "MODULE_INIT_SCRIPTS", (str(empty), str(real), str(later)))
    done = _run(render.environment_lines([EnvStep("module", "cuda/12.1")]), tmp_path)
    assert (done.returncode, done.stdout) == (0, "b: load cuda/12.1\n"), done.stderr


def test_an_inherited_lmod_pkg_comes_first(tmp_path: Path) -> None:
    pkg = tmp_path / "lmod"
    _fake_init(pkg / "init" / "bash", 'module() { echo "inherited: $*"; }\n')
    done = _run(render.environment_lines([EnvStep("module", "x/1")]), tmp_path, LMOD_PKG=str(pkg))
    assert (done.returncode, done.stdout) == (0, "inherited: load x/1\n"), done.stderr


def test_a_module_function_already_there_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exported by the submitting shell (BASH_FUNC_module%%), or defined by a --setup line
    given before --module: the search comes after it and does not run."""
    monkeypatch.setattr(render, "MODULE_INIT_SCRIPTS", (f"{tmp_path}/none",))
    steps = [EnvStep("setup", 'module() { echo "mine: $*"; }'), EnvStep("module", "x/1")]
    done = _run(render.environment_lines(steps), tmp_path)
    assert (done.returncode, done.stdout) == (0, "mine: load x/1\n"), done.stderr
    exported = _run(
        render.environment_lines([EnvStep("module", "y/2")]),
        tmp_path,
        **{"BASH_FUNC_module%%": '() {  echo "exported: $*"\n}'},
    )
    assert (exported.returncode, exported.stdout) == (0, "exported: load y/2\n")


def test_conda_missing_is_one_line_and_exit_127(tmp_path: Path) -> None:
    done = _run([*render.environment_lines([EnvStep("conda", "torch")]), "echo never"], tmp_path)
    assert done.returncode == 127
    [line] = done.stderr.splitlines()
    assert line.startswith("nsml-hpc: error: --conda needs the conda command")
    assert "${CONDA_EXE}, $HOME/miniforge3/bin/conda" in line


def test_conda_is_found_through_conda_exe(tmp_path: Path) -> None:
    """A stand-in for conda's CLI (no conda installs here): it answers ``shell.bash hook``
    the way conda does, with a shell function. Only the lookup is verified, not conda."""
    fake = _fake_init(
        tmp_path / "opt" / "bin" / "conda",
        "#!/bin/sh\n"
        'if [ "$1 $2" = "shell.bash hook" ]; then\n'
        "  echo 'conda() { echo \"conda $* (from $(command -v conda))\"; }'\n"
        "fi\n",
    )
    fake.chmod(0o755)
    done = _run(
        render.environment_lines([EnvStep("conda", "torch")]), tmp_path, CONDA_EXE=str(fake)
    )
    assert (done.returncode, done.stdout) == (0, "conda activate torch (from conda)\n"), done.stderr
