"""The in-job package: the modules a job imports, copied into every run directory.

A job runs ``python -m nsml_hpc.job`` with ``<run dir>/.nsml/python`` on its ``PYTHONPATH``;
that folder gets a copy of the in-job modules (the API behind ``import nsml_hpc`` and the job
wrapper), found by following their ``nsml_hpc`` imports from ``__init__`` and ``job``. A copy,
not a link to this installation, because:

- a remote cluster then needs no nsml-hpc installed, only a Python 3 (``remote_python``);
- a job runs exactly the in-job code of the nsml-hpc that submitted it, even when nsml-hpc is
  upgraded (or removed) while the job waits in the queue.

The in-job modules import only the standard library (tests/test_headless.py checks that), so
the copy is a few small files.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "nsml_hpc"
ROOTS = ("__init__", "job")
PACKAGE_DIR = Path(__file__).resolve().parent


def _imported_modules(source: str, module: str) -> set[str]:
    """Names of the package's top-level modules that ``source`` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from .x import y
                base = node.module or ""
                names = (
                    [f"{PACKAGE}.{base}"] if base else [f"{PACKAGE}.{a.name}" for a in node.names]
                )
            elif node.module:
                names = [node.module]
                if node.module == PACKAGE:
                    names += [f"{PACKAGE}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == PACKAGE and len(parts) >= 2:
                found.add(parts[1])
    found.discard(module)
    return found


def in_job_modules(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The closure of ``ROOTS`` under the package's own imports (module names, sorted)."""
    seen: set[str] = set()
    pending = list(ROOTS)
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        path = package_dir / f"{module}.py"
        if (package_dir / module).is_dir():
            raise ValueError(
                f"in-job code imports the subpackage {PACKAGE}.{module}: jobs get only "
                "top-level standard-library modules"
            )
        if not path.is_file():
            raise FileNotFoundError(f"in-job module {PACKAGE}.{module} has no file {path}")
        seen.add(module)
        names = _imported_modules(path.read_text("utf-8"), module)
        pending.extend(
            name
            for name in names
            if (package_dir / f"{name}.py").is_file() or (package_dir / name).is_dir()
        )
    return sorted(seen)


@cache
def in_job_files() -> dict[str, bytes]:
    """``{"nsml_hpc/api.py": b"...", ...}``: what goes under ``.nsml/python/``."""
    return {
        f"{PACKAGE}/{module}.py": (PACKAGE_DIR / f"{module}.py").read_bytes()
        for module in in_job_modules()
    }
