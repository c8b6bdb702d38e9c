"""The in-job package copied into every run directory: found by following imports, and
enough on its own to run a job on a cluster's bare Python (no nsml-hpc installed there)."""

from __future__ import annotations

import glob
import json
import os
import subprocess
from pathlib import Path

import pytest

from nsml_hpc.job.spec import SessionSpec
from nsml_hpc.submit.injob_copy import _imported_modules, in_job_files, in_job_modules


def test_the_in_job_modules_are_the_job_package_and_what_it_imports():
    assert in_job_modules() == [
        "__init__",
        "errors",
        "job.__init__",
        "job.__main__",
        "job.api",
        "job.direction",
        "job.duration",
        "job.gpu_monitor",
        "job.hparams",
        "job.layout",
        "job.live_hparams",
        "job.permissions",
        "job.progress",
        "job.rendezvous",
        "job.sbatch_options",
        "job.snapshot_format",
        "job.snapshot_store",
        "job.snapshots",
        "job.spec",
        "job.staging",
        "job.task",
        "job.text",
        "job.wrapper",
    ]
    assert set(in_job_files()) == {
        "nsml_hpc/" + name.replace(".", "/") + ".py" for name in in_job_modules()
    }


def test_imports_of_every_form_are_followed():
    source = (
        "import nsml_hpc.alpha\n"
        "from nsml_hpc.beta import x\n"
        "from nsml_hpc import gamma, __version__\n"
        "from . import delta\n"
        "from .epsilon import y\n"
        "import json\n"
        "def f():\n    import nsml_hpc.zeta\n"
    )
    found = _imported_modules(source, "job.self")
    assert found == {
        "alpha",
        "beta",
        "beta.x",
        "gamma",
        "__version__",
        "job",
        "job.delta",
        "job.epsilon",
        "job.epsilon.y",
        "zeta",
    }


def test_in_job_code_that_imports_another_subpackage_is_refused(tmp_path: Path) -> None:
    package = tmp_path / "nsml_hpc"
    (package / "catalog").mkdir(parents=True)
    (package / "job").mkdir()
    (package / "catalog" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("from nsml_hpc.job.api import report\n")
    (package / "job" / "__init__.py").write_text("")
    (package / "job" / "__main__.py").write_text("")
    (package / "job" / "api.py").write_text("import nsml_hpc.catalog\n")
    with pytest.raises(ValueError, match=r"subpackage nsml_hpc\.catalog"):
        in_job_modules(package)


def _interpreters() -> list[str]:
    """Pythons on this machine that are not nsml-hpc's own environment (>= 3.10)."""
    found: dict[str, str] = {}
    candidates = ["/usr/bin/python3", *sorted(glob.glob("/root/.pyenv/versions/3.*/bin/python3"))]
    for path in candidates:
        if not os.access(path, os.X_OK):
            continue
        done = subprocess.run(
            [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        version = done.stdout.strip()
        if done.returncode == 0 and tuple(map(int, version.split("."))) >= (3, 10):
            found.setdefault(version, path)
    return sorted(found.values())


TRAIN = """
import sys, nsml_hpc
print(nsml_hpc.__file__)
lr = nsml_hpc.session.hyperparameters["lr"]
nsml_hpc.report(step=0, lr=lr)
sys.exit(3)
"""


@pytest.mark.parametrize("python", _interpreters())
def test_the_copy_runs_a_job_on_a_bare_python(python: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "code").mkdir(parents=True)
    (run_dir / "code" / "train.py").write_text(TRAIN)
    api = run_dir / ".nsml" / "python"
    for relative, data in in_job_files().items():
        (api / relative).parent.mkdir(parents=True, exist_ok=True)
        (api / relative).write_bytes(data)
    document = {
        "name": "p/1",
        "project": "p",
        "spec": SessionSpec(project="p", script="train.py", args=["--lr", "0.5"]).to_dict(),
        "hyperparameters": {"lr": 0.5},
        "interpreter": python,
    }
    (run_dir / "session.json").write_text(json.dumps(document))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(api), "NSML_HPC_RUN_DIR": str(run_dir)}
    done = subprocess.run(
        [python, "-m", "nsml_hpc.job", str(run_dir)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip().startswith(str(api))  # the copy, not an installed nsml-hpc
    assert json.loads((run_dir / "metrics.jsonl").read_text())["lr"] == 0.5
    events = [
        json.loads(line)["event"] for line in (run_dir / "events.jsonl").read_text().splitlines()
    ]
    assert events == ["started", "ended"]
