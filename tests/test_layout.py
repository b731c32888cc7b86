"""The house's layout rules: no import cycle, a one-way record path, an independent sandbox."""

from __future__ import annotations

import ast
from pathlib import Path

import tap_calven

PACKAGE = Path(tap_calven.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The tap_calven modules a module imports, TYPE_CHECKING imports included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in known} - {module_name(path)}


def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(path) for path in paths}
    return {module_name(path): imports_of(path, known) for path in paths}


def reaches(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(edges.get(name, ()))
    return seen


def test_no_module_imports_itself_back() -> None:
    edges = graph()
    assert len(edges) > 15
    assert "tap_calven.client" in edges["tap_calven.streams"]
    cycles = {name for name in edges if name in reaches(edges, name)}
    assert not cycles, cycles


def test_the_record_path_never_returns_to_a_module_it_left() -> None:
    """request -> body -> records -> messages: each stage imports only stages before it."""
    edges = graph()
    flow = ["json_array", "api", "fetching", "writer", "client", "streams", "tap"]
    for index, stage in enumerate(flow):
        later = {f"tap_calven.{name}" for name in flow[index + 1 :]}
        assert not reaches(edges, f"tap_calven.{stage}") & later, stage


def test_the_sandbox_is_its_own_house() -> None:
    edges = graph()
    for name, imported in edges.items():
        if name.startswith("tap_calven.sandbox"):
            outside = {m for m in imported if not m.startswith("tap_calven.sandbox")}
            assert not outside, f"{name} imports the tap's {outside}"
