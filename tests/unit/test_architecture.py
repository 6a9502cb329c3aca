"""The package's structure is pinned: no import cycles, no reaching into other modules'
underscored names, the engine below the index layer, a facade that only delegates.

Imports are read from the source (``ast``), including imports inside functions: a lazy
import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("memvid_store", "memvid_integrations")


def _modules(package: str) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package __init__)."""
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        if is_init:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_init)
    return found


def _import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (at top level or inside functions)."""
    modules = _modules(package)

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_init) in modules.items():
        here = name.split(".") if is_init else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                if target.split(".")[0] != package:
                    continue
                module = owner(target)
                if module is not None and module != name:
                    graph[name].add(module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_reader_sees_lazy_imports_and_cycles():
    """Guard the guard: imports inside functions count, and a cycle is found."""
    graph = _import_graph("memvid_store")
    assert "memvid_store.engine.store" in graph["memvid_store.memory"]
    assert "memvid_store.index.searcher" in graph["memvid_store.reads"]  # inside find_batch
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package):
    assert _cycles(_import_graph(package)) == []


def test_engine_does_not_import_the_layers_above_it():
    graph = _import_graph("memvid_store")
    above = ("memvid_store.index", "memvid_store.memory", "memvid_store.reads",
             "memvid_store.coldstart", "memvid_store.cli")
    for module, imports in graph.items():
        if module.startswith("memvid_store.engine"):
            bad = sorted(t for t in imports if t.startswith(above))
            assert bad == [], f"{module} imports {bad}"


def _private_names(tree: ast.AST) -> tuple[set[str], list[tuple[int, str]]]:
    """(underscored names a module defines, underscored names it reads off other objects).

    A module defines ``_x`` by a def/class/assignment of that name, by assigning
    ``self._x``/``cls._x``, or as a parameter. It reads one by ``obj._x`` (dunders aside)
    or ``from ... import _x``; ``self._x`` and ``cls._x`` are the object's own state,
    inherited ones included, and never count.
    """
    defined: set[str] = set()
    used: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                if isinstance(node.ctx, ast.Store):
                    defined.add(node.attr)
                continue
            used.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(
                ".")[0] in PACKAGES):
            used += [(node.lineno, a.name) for a in node.names
                     if a.name.startswith("_") and not a.name.startswith("__")]
    return {d for d in defined if d.startswith("_")}, used


def _private_access() -> list[str]:
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    parsed = {p: _private_names(ast.parse(p.read_text())) for p in files}
    owners: dict[str, set[Path]] = {}
    for path, (defined, _) in parsed.items():
        for name in defined:
            owners.setdefault(name, set()).add(path)
    problems = []
    for path, (defined, used) in parsed.items():
        for line, name in used:
            if name not in defined and name in owners:
                elsewhere = ", ".join(sorted(str(p.relative_to(ROOT)) for p in owners[name]))
                problems.append(f"{path.relative_to(ROOT)}:{line} reads {name} ({elsewhere})")
    return problems


def test_no_module_reads_another_modules_underscored_names():
    assert _private_access() == []


def test_the_private_access_reader_finds_a_violation():
    """Guard the guard: a read of another module's underscored attribute is reported."""
    mine = _private_names(ast.parse("class A:\n    def _own(self):\n        self._x = 1\n"))
    theirs = _private_names(ast.parse("def f(a):\n    return a._x + a._own()\n"))
    inherited = _private_names(ast.parse("class B(A):\n    def g(self):\n        self._own()\n"))
    assert mine[0] == {"_own", "_x"}
    assert {name for _, name in theirs[1]} == {"_x", "_own"}
    assert inherited[1] == []
    assert not {name for _, name in theirs[1]} & theirs[0]


def test_the_facade_stays_small():
    """``Memory`` is lifecycle plus delegation: the write path lives in engine/writer.py."""
    lines = (ROOT / "memvid_store" / "memory.py").read_text().count("\n")
    assert lines <= 450, f"memory.py has {lines} lines"


# the engine API adapters may use: the package, its errors and types, lazy modules, embedders
ADAPTER_API = {"memvid_store", "memvid_store.errors", "memvid_store.types", "memvid_store.lazy",
               "memvid_store.embeddings"}
# reads that walk a whole collection: adapters list through indexed select/count instead
WHOLE_COLLECTION_READS = {"iter_timeline", "timeline", "ids"}


def _adapter_modules() -> dict[str, ast.AST]:
    return {str(p.relative_to(ROOT)): ast.parse(p.read_text())
            for p in (ROOT / "memvid_integrations").rglob("*.py")}


def test_adapters_use_only_the_public_engine_api():
    for name, tree in _adapter_modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and not node.level:
                module = node.module or ""
            elif isinstance(node, ast.Import):
                module = node.names[0].name
            else:
                continue
            if module.split(".")[0] == "memvid_store":
                assert module in ADAPTER_API, f"{name} imports {module}"


def test_adapters_never_read_a_whole_collection():
    for name, tree in _adapter_modules().items():
        calls = {node.func.attr for node in ast.walk(tree)
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
        assert not calls & WHOLE_COLLECTION_READS, f"{name} calls {calls & WHOLE_COLLECTION_READS}"
