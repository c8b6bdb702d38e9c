"""The wheel is the product: every module under nsml_hpc/ and tui/ and every data file
(.tcss styles, .j2 templates, py.typed) is in the built wheel, and a plain ``pip install`` of it
(not an editable install) renders a script. scripts/wheel-e2e.sh runs a whole session from it."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
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
    return next(dist.glob("nsml_hpc-*.whl"))


def _source_files() -> dict[str, str]:
    """Where each shipped source file must be in the wheel: nsml_hpc/** as it is, tui/** and
    sbatch_templates/** inside nsml_hpc/ (``nsml_hpc.tui``, ``nsml_hpc.sbatch_templates``)."""
    wanted: dict[str, str] = {}
    for top, inside in (
        ("nsml_hpc", "nsml_hpc"),
        ("tui", "nsml_hpc/tui"),
        ("sbatch_templates", "nsml_hpc/sbatch_templates"),
    ):
        for path in sorted((REPO / top).rglob("*")):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix in (".py", ".tcss", ".j2") or path.name == "py.typed":
                relative = path.relative_to(REPO / top).as_posix()
                wanted[f"{top}/{relative}"] = f"{inside}/{relative}"
    return wanted


@pytest.mark.slow
def test_every_module_and_data_file_is_in_the_wheel(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = _source_files()
    assert len(wanted) > 150  # the whole tree was found, not an empty glob
    assert {"nsml_hpc/capture/__init__.py", "nsml_hpc/tui/app.tcss"} <= set(wanted.values())
    missing = sorted(source for source, shipped in wanted.items() if shipped not in names)
    assert missing == [], f"missing from the wheel: {missing}"


@pytest.mark.slow
def test_built_wheel_installs_into_a_fresh_venv_and_renders(wheel: Path, tmp_path: Path) -> None:
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
    for migration in (
        "env.py",
        "script.py.mako",
        "versions/0001_baseline.py",
        "versions/0002_teams.py",
    ):
        assert f"nsml_hpc/catalog/migrations/{migration}" in names

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
