"""The in-job package: the modules a job imports, copied into every run directory.

A job runs ``python -m nsml_hpc.job`` with ``<run dir>/.nsml/python`` on its ``PYTHONPATH``;
that folder gets a copy of the in-job modules (the API behind ``import nsml_hpc`` and the job
wrapper), found by following their ``nsml_hpc`` imports from ``nsml_hpc/__init__.py`` and
``nsml_hpc/job/__main__.py``. A copy, not a link to this installation, because:

- a remote cluster then needs no nsml-hpc installed, only a Python 3 (``remote_python``);
- a job runs exactly the in-job code of the nsml-hpc that submitted it, even when nsml-hpc is
  upgraded (or removed) while the job waits in the queue.

The in-job modules live in :mod:`nsml_hpc.job` (plus the top-level :mod:`nsml_hpc.errors`) and
import only the standard library (tests/pure/test_headless.py checks that), so the copy is a
few small files. In-job code that imports any other subpackage is refused here.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "nsml_hpc"
IN_JOB_PACKAGE = "job"
# The API, the wrapper, and the rendezvous helper multi-node batch scripts run.
ROOTS = ("__init__", f"{IN_JOB_PACKAGE}.__main__", f"{IN_JOB_PACKAGE}.rendezvous")
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _imported_modules(source: str, module: str) -> set[str]:
    """Dotted names (relative to the package) of what ``source`` imports from the package.

    ``from nsml_hpc.a import b`` yields both ``a`` and ``a.b``: whichever of them is a module
    is followed. ``module`` (dotted, relative) resolves relative imports.
    """
    package_parts = module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from .x import y
                up = package_parts[: len(package_parts) - (node.level - 1)]
                base = ".".join([PACKAGE, *up, *([node.module] if node.module else [])])
            elif node.module:
                base = node.module
            else:
                continue
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == PACKAGE and len(parts) >= 2:
                found.add(".".join(parts[1:]))
    found.discard(module)
    return found


def _file_of(name: str, package_dir: Path) -> Path | None:
    """The file behind a dotted name: a module, or a package's ``__init__``; None if neither."""
    base = package_dir.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _module_of(path: Path, package_dir: Path) -> str:
    return ".".join(path.relative_to(package_dir).with_suffix("").parts)


def in_job_modules(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The closure of ``ROOTS`` under the package's own imports (dotted names, sorted)."""
    seen: set[str] = set()
    pending = list(ROOTS)
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        path = _file_of(module, package_dir)
        if path is None:
            continue  # an attribute (``from nsml_hpc import report``), not a module
        module = _module_of(path, package_dir)
        if module in seen:
            continue
        top = module.split(".")[0]
        if "." in module and top != IN_JOB_PACKAGE:
            raise ValueError(
                f"in-job code imports the subpackage {PACKAGE}.{top}: jobs get only "
                f"{PACKAGE}.{IN_JOB_PACKAGE} and top-level standard-library modules"
            )
        seen.add(module)
        if "." in module:  # a module inside a package needs the package's __init__ too
            pending.append(f"{top}.__init__")
        pending.extend(_imported_modules(path.read_text("utf-8"), module))
    return sorted(seen)


@cache
def in_job_files() -> dict[str, bytes]:
    """``{"nsml_hpc/job/api.py": b"...", ...}``: what goes under ``.nsml/python/``."""
    files = {}
    for module in in_job_modules():
        relative = Path(*module.split(".")).with_suffix(".py")
        files[f"{PACKAGE}/{relative.as_posix()}"] = (PACKAGE_DIR / relative).read_bytes()
    return files
