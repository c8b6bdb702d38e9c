"""Run-directory names and the job's environment variables are spelled in ONE module,
nsml_hpc/job/layout.py: no other module or template writes them out."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nsml_hpc.job import layout

PACKAGE = Path(layout.__file__).resolve().parent.parent
TEMPLATES = PACKAGE.parent / "sbatch_templates"
DISTINCT_NAMES = [
    layout.SESSION_FILE,
    layout.SCRIPT_FILE,
    layout.METRICS_FILE,
    layout.EVENTS_FILE,
    layout.GPU_FILE,
    layout.SWEEP_FILE,
    layout.CODE_MANIFEST,
    layout.CHECKPOINT_FLAG,
    layout.TASKS_DIR,
    layout.RANKS_DIR,
    layout.LOCAL_SNAPSHOTS_DIR,
    f"{layout.PRIVATE_DIR}/",
    "slurm-",
    layout.RUN_DIR_ENV,
    layout.SESSION_ENV,
    layout.RESUME_FROM_ENV,
    layout.RESUME_STEP_ENV,
    layout.RESTART_COUNT_ENV,
    layout.RUN_ROOT_ENV,
    layout.LOCAL_SNAPSHOTS_ENV,
    layout.GPU_INTERVAL_ENV,
]


def _spells(text: str, name: str) -> bool:
    """Env variables and prefixes anywhere; file names as a whole path component."""
    if name.startswith("NSML_HPC_") or name.endswith(("/", "-")):
        return name in text.replace(f"--{name}", "")  # a flag such as --slurm-conf is not one
    return any(part == name for part in text.split("/")) or name in text.split()


def _docstrings(tree: ast.Module) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _spelled_names(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings:
                continue
            found += [name for name in DISTINCT_NAMES if _spells(node.value, name)]
    return found


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "layout.py"],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_no_module_spells_a_run_directory_name_or_job_variable(path: Path) -> None:
    assert _spelled_names(path) == []


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.j2")), ids=lambda p: p.name)
def test_templates_take_the_names_from_the_render_context(path: Path) -> None:
    text = path.read_text("utf-8")
    assert [name for name in DISTINCT_NAMES if name in text] == []


def test_slurm_output_names() -> None:
    assert layout.slurm_output("42") == "slurm-42.out"
    assert layout.slurm_output("42_3") == "slurm-42_3.out"
    assert layout.SLURM_OUTPUT_PATTERN == "slurm-%j.out"
    assert layout.ARRAY_OUTPUT_PATTERN == "slurm-%A_%a.out"
