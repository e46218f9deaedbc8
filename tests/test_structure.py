"""The layout's rules, read from the code itself: no import circle among the
project's modules (imports inside functions and for type checking included), and no
function of 60 lines or more."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("verifier", "storage", "jobs")
LONGEST = 59
"""The most lines a function may take, its signature and docstring included."""


def modules(packages=PACKAGES) -> dict[str, Path]:
    """Every module of the packages, by dotted name (a package by its own name)."""
    found = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _target(name: str, known: dict) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(name: str, path: Path, known: dict) -> set[str]:
    """The project modules ``name`` imports anywhere in its file, other than its own
    packages (always imported before it)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            out |= {_target(a.name, known) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            for alias in node.names:  # ``from X import a``: module X.a where there is one
                full = f"{base}.{alias.name}"
                out.add(full if full in known else _target(base, known))
    return {m for m in out if m and m != name and not name.startswith(m + ".")}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def functions(paths) -> list[tuple[int, str]]:
    """``(lines, where)`` of every function and method, longest first."""
    out = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((node.end_lineno - node.lineno + 1,
                            f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return sorted(out, reverse=True)


def test_the_circle_finder_finds_a_circle_and_only_circles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_through_others():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert len(graph) > 50 and graph["jobs.query"]  # the imports were read
    assert circles(graph) == []


def test_layers_point_down_only():
    """``verifier`` and ``storage`` know nothing of each other or of ``jobs``."""
    known = modules()
    for name, path in known.items():
        layer = name.split(".")[0]
        allowed = {"verifier": {"verifier"}, "storage": {"storage"},
                   "jobs": {"jobs", "verifier", "storage"}}[layer]
        assert {m.split(".")[0] for m in imports(name, path, known)} <= allowed, name


def test_no_function_is_sixty_lines_long():
    paths = list(modules(PACKAGES).values()) + sorted((ROOT / "benchmarks").glob("*.py"))
    longest = functions(paths)
    assert longest and longest[0][0] > 20  # functions were measured
    assert [f for f in longest if f[0] > LONGEST] == []
