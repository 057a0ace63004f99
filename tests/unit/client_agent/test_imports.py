"""The agent's import rules: it never imports the server, and no two of its modules import each
other, even indirectly (imports under ``TYPE_CHECKING`` and inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import client_agent

PACKAGE = Path(client_agent.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported(path: Path) -> set[str]:
    """Every name ``path`` imports; ``from a import b`` is ``a.b`` when that is a module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if full in MODULES else node.module)
    return names


GRAPH = {
    name: {i for i in imported(path) if i in MODULES and i != name}
    for name, path in MODULES.items()
}


def cycles() -> list[list[str]]:
    """Every import cycle, each as the path that closes it (depth-first, one per back edge)."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        for target in sorted(GRAPH[name]):
            if target in path:
                found.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(name)

    for name in sorted(GRAPH):
        if name not in done:
            visit(name, [name])
    return found


def test_the_agent_never_imports_the_server() -> None:
    offenders = {
        name: sorted(i for i in imported(path) if i == "server" or i.startswith("server."))
        for name, path in MODULES.items()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_module_of_the_agent_imports_itself_through_others() -> None:
    assert cycles() == []


def test_the_graph_sees_imports_inside_functions_and_modules_imported_from_the_package() -> None:
    """The rule is only as good as the graph: these imports are known to be there."""
    assert "client_agent.bundle" in GRAPH["client_agent.cli"]  # inside a function
    assert "client_agent.archive" in GRAPH["client_agent.install"]  # `from client_agent import`
