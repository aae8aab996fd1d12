"""The package's import graph, read from the source: no circles, no private names across modules.

Every ``import`` and ``from ... import`` counts, relative or absolute, at module level, under
``if TYPE_CHECKING:`` or inside a function: a circle closed by a type-only or a lazy import is still
a circle a reader has to untangle. A module may import another module whose path holds an
underscore-prefixed package (``airflow_provider_partneros._protocol.flows``); it may not import a
*name* beginning with ``_`` from another module: a name other modules need is not private.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "airflow_provider_partneros"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


@dataclass(frozen=True)
class Edge:
    """``importer`` imports ``imported`` (a module of the package) at ``line``; ``name`` if a from-import."""

    importer: str
    imported: str
    line: int
    name: str | None = None

    def __str__(self) -> str:
        what = f"{self.imported}.{self.name}" if self.name else self.imported
        return f"{self.importer}:{self.line} -> {what}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _absolute(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute module a (possibly relative) import names."""
    if not level:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of the package."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def edges_of(importer: str, path: Path, modules: dict[str, Path]) -> Iterator[Edge]:
    """Every import of a package module in ``path``'s source, wherever it sits in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target is not None and target != importer:
                    yield Edge(importer, target, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(importer, is_package, node.level, node.module)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:  # ``from pkg import module``: an edge to the module itself
                    if submodule != importer:
                        yield Edge(importer, submodule, node.lineno)
                    continue
                target = _resolve(base, modules)
                if target is not None and target != importer:
                    yield Edge(importer, target, node.lineno, alias.name)


def import_graph() -> list[Edge]:
    modules = package_modules()
    return [edge for name, path in modules.items() for edge in edges_of(name, path, modules)]


def cycles(edges: list[Edge]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, set()).add(edge.imported)
        graph.setdefault(edge.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def is_private(name: str) -> bool:
    """``_name`` is private; a dunder such as ``__version__`` is not."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_name_imports(edges: list[Edge]) -> list[Edge]:
    return [edge for edge in edges if edge.name is not None and is_private(edge.name)]


# --- the graph reader reads what it should ---------------------------------------------------------------


def test_the_graph_sees_type_only_function_level_and_relative_imports(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "if TYPE_CHECKING:\n"
        "    from airflow_provider_partneros.pkg.c import Thing\n"
        "def f():\n"
        "    import airflow_provider_partneros.pkg.d\n"
        "    from .c import _private\n"
    )
    modules = {
        f"{PACKAGE}.pkg.a": tmp_path / "a.py",
        f"{PACKAGE}.pkg.b": tmp_path / "b.py",
        f"{PACKAGE}.pkg.c": tmp_path / "c.py",
        f"{PACKAGE}.pkg.d": tmp_path / "d.py",
    }
    modules[f"{PACKAGE}.pkg.a"].write_text(source)
    found = {(e.imported, e.name) for e in edges_of(f"{PACKAGE}.pkg.a", modules[f"{PACKAGE}.pkg.a"], modules)}
    assert found == {
        (f"{PACKAGE}.pkg.b", None),
        (f"{PACKAGE}.pkg.c", "Thing"),
        (f"{PACKAGE}.pkg.d", None),
        (f"{PACKAGE}.pkg.c", "_private"),
    }


def test_a_circle_is_found_and_a_chain_is_not() -> None:
    chain = [Edge("a", "b", 1), Edge("b", "c", 1)]
    circle = [*chain, Edge("c", "a", 1)]
    assert cycles(chain) == []
    assert cycles(circle) == [["a", "b", "c"]]


# --- the package ----------------------------------------------------------------------------------------


def test_the_package_has_no_import_circles() -> None:
    edges = import_graph()
    found = cycles(edges)
    if found:
        lines = []
        for component in found:
            members = set(component)
            inside = [str(e) for e in edges if e.importer in members and e.imported in members]
            lines.append(
                f"circle of {len(component)} modules, its edges:\n    " + "\n    ".join(sorted(inside))
            )
        raise AssertionError("import circles in the package:\n  " + "\n  ".join(lines))


def test_no_module_imports_an_underscore_name_from_another_module() -> None:
    offending = private_name_imports(import_graph())
    assert not offending, (
        "underscore names imported across modules (rename them: a name other modules need is not "
        "private):\n  " + "\n  ".join(str(e) for e in offending)
    )


def _defined_public_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_")}


def test_the_protocol_package_exports_every_public_name_of_its_flows_and_endpoints() -> None:
    """Transports write ``protocol.call_flow``: a name added to the flows must be exported too (the
    package loads the flows lazily, so a missing name would fail only when first used)."""
    from airflow_provider_partneros import _protocol

    expected = _defined_public_names(ROOT / "_protocol" / "flows.py") | _defined_public_names(
        ROOT / "_protocol" / "endpoints.py"
    )
    assert set(_protocol.__all__) == expected
    assert all(getattr(_protocol, name) is not None for name in expected)
