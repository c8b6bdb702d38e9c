"""Environment set-up that works wherever the job was submitted from, on the sandbox's real
Lmod (Debian's ``lmod``, the test modulefile ``demo/1.0`` that sets NSML_DEMO_MODULE).

``module`` is a shell function that only login shells get (Debian's /etc/profile.d/lmod.sh,
and BASH_ENV, which it exports). A job submitted from cron, a script (``env -i ...``) or over
ssh used to die with ``module: command not found`` (exit 127); the job script now initialises
the module system itself. ``--conda`` cannot be run for real here (no conda-compatible tool
installs from the registries this project reaches): its "not found" path is real and checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nsml_hpc.cli import main
from tests.helpers import write_script

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_sandbox")]

NSML = str(Path(sys.executable).with_name("nsml-hpc"))
DEMO_MODULEFILE = Path("/opt/nsml-sandbox/modulefiles/demo/1.0.lua")
LMOD_PROFILE = Path("/etc/profile.d/lmod.sh")
SHOW = """
import os, shutil
print("NSML_DEMO_MODULE=" + str(os.environ.get("NSML_DEMO_MODULE")), flush=True)
print("nsml-demo on PATH: " + str(shutil.which("nsml-demo") is not None), flush=True)
"""


@pytest.fixture(autouse=True)
def demo_module() -> None:
    if not (DEMO_MODULEFILE.is_file() and LMOD_PROFILE.is_file()):
        pytest.fail(
            f"the sandbox has no Lmod with the demo/1.0 module ({DEMO_MODULEFILE}, "
            f"{LMOD_PROFILE}): run sandbox/slurm-sandbox.sh up (it installs lmod)"
        )


def _non_login_submit(
    nsml_env: Path, project_dir: Path, tmp_path: Path, *flags: str
) -> subprocess.CompletedProcess[str]:
    """``nsml-hpc submit ... --follow show.py`` from an environment with nothing a login
    shell sets: no module function, no BASH_ENV, no LMOD_* or MODULEPATH (as from cron)."""
    home = tmp_path / "cron-home"
    home.mkdir()
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(home),
        **{key: value for key, value in os.environ.items() if key.startswith("NSML_HPC_")},
        "XDG_DATA_HOME": str(nsml_env / "xdg-data"),
        "XDG_CONFIG_HOME": str(nsml_env / "xdg-config"),
    }
    assignments = [f"{key}={value}" for key, value in env.items()]
    return subprocess.run(
        ["env", "-i", *assignments, NSML, "submit", *flags, "--follow", "show.py"],
        cwd=project_dir,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_module_from_a_non_login_environment(
    nsml_env: Path, project_dir: Path, tmp_path: Path
) -> None:
    write_script(project_dir, "show.py", SHOW)
    done = _non_login_submit(nsml_env, project_dir, tmp_path, "--module", "demo/1.0")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "NSML_DEMO_MODULE=1.0" in lines
    assert "nsml-demo on PATH: True" in lines
    assert lines[-1].endswith(": COMPLETED")


def test_module_over_ssh_as_alice(
    ssh_cluster: str, project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """sbatch runs in the non-login shell of an ssh exec on the cluster."""
    write_script(project_dir, "show.py", SHOW)
    capsys.readouterr()
    code = main(["submit", "--cluster", ssh_cluster, "--module", "demo/1.0", "--follow", "show.py"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    lines = out.splitlines()
    assert "NSML_DEMO_MODULE=1.0" in lines
    assert "nsml-demo on PATH: True" in lines
    assert lines[-1].endswith(": COMPLETED")


def test_a_missing_module_fails_the_job_with_lmods_message(
    nsml_env: Path, project_dir: Path, tmp_path: Path
) -> None:
    write_script(project_dir, "show.py", SHOW)
    done = _non_login_submit(nsml_env, project_dir, tmp_path, "--module", "nsml-no-such/9.9")
    assert done.returncode != 0
    assert "nsml-no-such/9.9" in done.stdout  # Lmod's own error, in the job's log
    assert "NSML_DEMO_MODULE" not in done.stdout  # the script never ran
    assert done.stdout.splitlines()[-1].split(": ", 1)[1].startswith("FAILED")


def test_conda_missing_is_one_clear_line_and_exit_127(
    nsml_env: Path, project_dir: Path, tmp_path: Path
) -> None:
    """What is verifiable of --conda here: no conda on the node, so the job says so (what it
    searched) and ends with 127 before the script runs."""
    write_script(project_dir, "show.py", SHOW)
    done = _non_login_submit(nsml_env, project_dir, tmp_path, "--conda", "torch")
    assert done.returncode == 127, done.stdout + done.stderr
    [line] = [line for line in done.stdout.splitlines() if "nsml-hpc: error:" in line]
    assert "--conda needs the conda command" in line
    assert "$HOME/miniforge3/bin/conda" in line and "/opt/conda/bin/conda" in line
    assert done.stdout.splitlines()[-1].endswith(": FAILED (exit 127)")
