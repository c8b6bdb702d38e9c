"""A plain ``pip install`` of the built wheel (not an editable install) carries the templates
and the TUI package, and renders a script."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_built_wheel_installs_into_a_fresh_venv_and_renders(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
        timeout=300,
    )
    wheel = next(dist.glob("nsml_hpc-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "nsml_hpc/sbatch_templates/job.sbatch.j2" in names
    assert "nsml_hpc/tui/__init__.py" in names
    for feature in ("sessions", "session", "compare", "cluster"):
        assert f"nsml_hpc/tui/{feature}/screen.py" in names
        assert f"nsml_hpc/tui/{feature}/{feature}.tcss" in names
    assert "nsml_hpc/tui/dialogs/confirm.py" in names
    assert "nsml_hpc/tui/dialogs/dialogs.tcss" in names
    assert "nsml_hpc/tui/app.tcss" in names
    assert "nsml_hpc/tui/widgets/metric_plot.py" in names

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            str(wheel),
            "jinja2",
            "markupsafe",
        ],
        check=True,
        timeout=300,
    )
    probe = (
        "import nsml_hpc.submit.render as r, nsml_hpc.job.spec as s\n"
        "print(r.__file__)\n"
        "print(r.render_script(s.SessionSpec(project='p', script='t.py',"
        " resources=s.Resources(gpus=4)), r.ScriptContext('p/1', '/runs/p/1', '/usr/bin/python3',"
        " '/runs/p/1/.nsml/python')))"
    )
    done = subprocess.run(
        [str(python), "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert str(env_dir) in done.stdout.splitlines()[0]
    assert "#SBATCH --gres=gpu:4" in done.stdout
