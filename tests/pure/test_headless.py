"""The import boundaries: the in-job API loads only the standard library, the headless core
never loads Textual, and the CLI and the TUI reach the library only through the workspace."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import json
import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

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
        "nsml_hpc.workspace",
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


def test_the_workspace_face_loads_its_features_only_when_an_operation_runs() -> None:
    loaded = _loaded_after("import nsml_hpc.workspace")
    features = (
        "nsml_hpc.sessions",
        "nsml_hpc.snapshots",
        "nsml_hpc.experiments",
        "nsml_hpc.sweeps",
        "nsml_hpc.submit.create",
        "nsml_hpc.sync.run",
        "nsml_hpc.clusters.info",
    )
    assert not [name for name in loaded if any(name.startswith(f) for f in features)]
    assert not {name.split(".")[0] for name in loaded} & {"pandas", "jinja2", "paramiko", "textual"}


# --- the front ends reach the library through the workspace -------------------------------

REPO = Path(__file__).resolve().parents[2]
FRONT_ENDS = {
    "nsml_hpc.cli": REPO / "nsml_hpc" / "cli",
    "nsml_hpc.tui": REPO / "tui",
    "nsml_hpc.client": REPO / "nsml_hpc" / "client.py",  # the notebook API (one module)
}
BEHIND_THE_WORKSPACE = ("nsml_hpc.catalog", "nsml_hpc.backends")
# What a front end may import from whole: the face, the errors, the formatting, the "did
# you mean" helper, logging's set-up, itself.
OPEN_TO_FRONT_ENDS = (
    "nsml_hpc.workspace",
    "nsml_hpc.errors",
    "nsml_hpc.formatting",
    "nsml_hpc.suggest",
    "nsml_hpc.logs",
    "nsml_hpc.cli",
    "nsml_hpc.tui",
    "nsml_hpc.client",
)
# Pure functions of values a front end may call directly (they touch no state): parsers of a
# user's text and formatters. Everything else that is callable is a Workspace method.
PURE_FUNCTIONS = {
    "nsml_hpc.job.spec.parse_count",
    "nsml_hpc.job.spec.parse_gpus",
    "nsml_hpc.job.spec.validate_dependency",
    "nsml_hpc.job.spec.validate_mail_type",
    "nsml_hpc.sessions.views.shown_resources",
    "nsml_hpc.slurm.sinfo.node_rows",
    "nsml_hpc.slurm.sinfo.partition_summary",
    "nsml_hpc.slurm.sinfo.per_node_text",
    "nsml_hpc.job.spec.time_limit_minutes",
    "nsml_hpc.job.spec.parse_dataset_ref",
    "nsml_hpc.job.spec.validate_memo",
    "nsml_hpc.job.spec.validate_memory",
    "nsml_hpc.job.spec.validate_stdout_pattern",
    "nsml_hpc.slurm.timefmt.format_duration",
    "nsml_hpc.snapshots.fork.parse_changes",
    "nsml_hpc.snapshots.fork.split_changes",
    "nsml_hpc.sweeps.grid.expand",
    "nsml_hpc.sweeps.grid.parse_grid",
    "nsml_hpc.sweeps.grid.parse_range",
    "nsml_hpc.submit.request.after_given",
    "nsml_hpc.submit.request.keyword",
    "nsml_hpc.submit.request.resources_from",
    "nsml_hpc.submit.request.resources_given",
}


@dataclass(frozen=True)
class Import:
    where: str  # path:line
    module: str  # absolute
    name: str | None  # None: ``import module`` (or import_module("module"))

    @property
    def target(self) -> str:
        return self.module if self.name is None else f"{self.module}.{self.name}"


def _front_end_modules() -> list[tuple[str, Path, bool]]:
    found = []
    for package, folder in FRONT_ENDS.items():
        if folder.is_file():
            found.append((package, folder, False))
            continue
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join((package, *(parts[:-1] if is_package else parts)))
            found.append((name, path, is_package))
    return found


def _imports(module: str, path: Path, is_package: bool) -> list[Import]:
    """Every import in the file, at any depth: module level, inside functions and classes,
    under ``if TYPE_CHECKING``, and ``importlib.import_module("...")`` with a literal name."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found.extend(Import(where, alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            absolute = importlib.util.resolve_name(base, package) if node.level else base
            found.extend(Import(where, absolute, alias.name) for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in ("importlib.import_module", "import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(Import(where, node.args[0].value, None))
    return found


def _front_end_imports() -> list[Import]:
    imports = [
        found
        for module, path, is_package in _front_end_modules()
        for found in _imports(module, path, is_package)
    ]
    assert len({i.where.split(":")[0] for i in imports}) > 20  # cli/ and tui/ were read
    return imports


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def test_cli_and_tui_reach_the_library_only_through_the_workspace() -> None:
    imports = _front_end_imports()
    assert any(i.module == "nsml_hpc.workspace" for i in imports)
    wrong = [
        f"{i.where}: {i.target}"
        for i in imports
        if _within(i.module, BEHIND_THE_WORKSPACE) or _within(i.target, BEHIND_THE_WORKSPACE)
    ]
    assert wrong == [], "the catalog and the backends are the workspace's business"


def _is_value(module: str, name: str) -> bool:
    """A data type (class or type alias), a constant, or a listed pure function."""
    value = getattr(importlib.import_module(module), name)
    if inspect.ismodule(value):
        return False
    if isinstance(value, type) or typing.get_origin(value) is not None:
        return True
    return not callable(value) or f"{module}.{name}" in PURE_FUNCTIONS


def test_cli_and_tui_take_only_values_from_the_feature_packages() -> None:
    """The rule of the workspace's docstring: operations are Workspace methods; from the
    feature packages a front end imports data types, constants and pure parsers only."""
    wrong = [
        f"{i.where}: {i.target}"
        for i in _front_end_imports()
        if _within(i.module, ("nsml_hpc",))
        and not _within(i.module, OPEN_TO_FRONT_ENDS)
        and (i.name is None or not _is_value(i.module, i.name))
    ]
    assert wrong == [], "call the operation through nsml_hpc.workspace.Workspace"
