"""The import graph of nsml_hpc has no circles (imports inside functions count: a lazy import
hides a circle, it does not break it), and no module loads another of ours by a string."""

from __future__ import annotations

import ast
from pathlib import Path

import nsml_hpc

PACKAGE = Path(nsml_hpc.__file__).resolve().parent
# Loaded by name on purpose: the TUI is optional (Textual), imported only by ``nsml-hpc tui``.
LOADED_BY_NAME = {
    ("nsml_hpc.cli.tui_command", "nsml_hpc.tui"),
    ("nsml_hpc.cli.serve_command", "nsml_hpc.tui.web"),  # the TUI in a browser (optional)
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(("nsml_hpc", *path.relative_to(PACKAGE).with_suffix("").parts))
        found[name.removesuffix(".__init__")] = path
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_no_import_circles() -> None:
    assert _circles(_graph()) == []


def test_the_circle_finder_finds_one() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_of_ours_is_loaded_by_a_string() -> None:
    """``import_module`` only with a literal name: a third-party optional one (pyslurm, torch),
    or the optional TUI (in a terminal or in a browser)."""
    ours, computed = set(), set()
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute | ast.Name)
                and getattr(node.func, "attr", getattr(node.func, "id", None))
                in ("import_module", "__import__")
            ):
                continue
            argument = node.args[0] if node.args else None
            if not isinstance(argument, ast.Constant):
                computed.add(name)
            elif str(argument.value).split(".")[0] == "nsml_hpc":
                ours.add((name, str(argument.value)))
    assert computed == set()
    assert ours == LOADED_BY_NAME
