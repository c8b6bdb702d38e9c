"""The import boundaries: the in-job API loads only the standard library, and the headless
core never loads Textual."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["pandas", "sqlalchemy", "sqlmodel", "textual", "jinja2", "paramiko", "numpy"]


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_nsml_hpc_in_a_job_loads_nothing_heavy() -> None:
    loaded = _loaded_after(
        "import nsml_hpc\nnsml_hpc.report(step=0, loss=1.0)\nnsml_hpc.session.name"
    )
    assert not {name for name in loaded for heavy in HEAVY if name.split(".")[0] == heavy}


def test_snapshot_api_loads_nothing_heavy() -> None:
    loaded = _loaded_after(
        "import nsml_hpc, tempfile, os\n"
        "os.chdir(tempfile.mkdtemp())\n"
        "nsml_hpc.save(lambda folder: (folder / 'w').write_bytes(b'1'), step=1)\n"
        "nsml_hpc.load('latest'); nsml_hpc.should_checkpoint()"
    )
    assert not {
        name for name in loaded for heavy in [*HEAVY, "torch"] if name.split(".")[0] == heavy
    }


def test_job_wrapper_loads_nothing_heavy() -> None:
    loaded = _loaded_after("import nsml_hpc.job.wrapper")
    assert not {name for name in loaded for heavy in HEAVY if name.split(".")[0] == heavy}


def test_headless_core_never_imports_textual() -> None:
    modules = [
        "nsml_hpc.cli",
        "nsml_hpc.sync.run",
        "nsml_hpc.submit.create",
        "nsml_hpc.sessions.actions",
        "nsml_hpc.sessions.views",
        "nsml_hpc.catalog",
        "nsml_hpc.backends",
        "nsml_hpc.submit.render",
        "nsml_hpc.snapshots.gc",
        "nsml_hpc.snapshots.fork",
        "nsml_hpc.snapshots.actions",
        "nsml_hpc.cli.snapshot_commands",
        "nsml_hpc.sessions.query",
        "nsml_hpc.experiments.compare",
        "nsml_hpc.clusters.info",
        "nsml_hpc.catalog.series",
        "nsml_hpc.catalog.downsample",
        "nsml_hpc.sessions.logtail",
        "nsml_hpc.clusters.health",
        "nsml_hpc.cli.tui_command",
    ]
    loaded = _loaded_after("\n".join(f"import {module}" for module in modules))
    assert "nsml_hpc.sync.run" in loaded
    assert not any(name.split(".")[0] in ("textual", "textual_plotext") for name in loaded)
    assert "nsml_hpc.tui" not in loaded


def test_the_cli_loads_textual_only_for_the_tui_command() -> None:
    loaded = _loaded_after("from nsml_hpc.cli import build_parser\nbuild_parser()")
    assert not any(name.split(".")[0] == "textual" for name in loaded)
