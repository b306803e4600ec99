"""The package's shape: the source is imported only by the command line, no module of the worker
is over 450 lines, and no import cycle runs through the package."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "connector"
MAX_WORKER_MODULE_LINES = 450


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The connector modules ``path`` imports (every import statement, also inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name in modules:
                found.add(name)
    return found


def test_nothing_but_the_command_line_imports_the_source() -> None:
    modules = _modules()
    importers = sorted(
        name
        for name, path in modules.items()
        if not name.startswith("connector.source")
        and any(m.startswith("connector.source") for m in _imports(path, modules))
    )
    assert importers == ["connector.cli"]  # it dispatches `zoom-connector source` and `send`


def test_no_module_of_the_worker_is_over_450_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in sorted((PACKAGE / "worker").rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_WORKER_MODULE_LINES
    }
    assert long == {}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
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
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _graph() -> dict[str, set[str]]:
    """Module -> the modules it imports; a package's ``__init__`` that only re-exports (the
    patch facade) counts as its modules, not as a module importing them back."""
    modules = _modules()
    graph = {name: _imports(path, modules) for name, path in modules.items()}
    for name, path in modules.items():
        if path.name == "__init__.py":
            for target in list(graph[name]):
                graph[name].discard(target)
            for importer in graph:
                if name in graph[importer] and importer != name:
                    graph[importer] |= _imports(path, modules) - {importer}
    return graph


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
