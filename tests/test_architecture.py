"""House rules that can be checked by reading the source: a pure core, packages that import only downwards,
no import circles, and the future import everywhere."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gateway"
MODULES = sorted(PACKAGE.rglob("*.py"))
PURE = sorted([*(PACKAGE / "core").glob("*.py"), *(PACKAGE / "domain").glob("*.py")])
IO_LIBRARIES = {"starlette", "httpx", "aiosqlite", "uvicorn", "sqlite3", "socket", "asyncio"}

# The packages of gateway/, lowest first. A module may import its own package and any package of a lower
# layer; packages of one layer are independent of each other. Each package's docstring says the same in words.
LAYERS: list[set[str]] = [
    {"domain"},  # the shared vocabulary: types, ports, errors (pure)
    {"core"},  # pure rules
    {"store", "observability", "outbound"},  # persistence, logs/metrics/traces, outbound HTTP
    {"providers", "sinks", "sandbox"},  # the plug-ins
    {"config"},  # settings: parses every plug-in's table
    {"desk"},  # the operator desk's services and policies
    {"engine"},  # the run engine
    {"runtime"},  # the composition root
    {"web"},  # the HTTP edge
    {"serving"},  # processes and servers
    {"cli"},  # the commands
]
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}
ENTRY_MODULES = {"__init__", "__main__"}  # the only modules allowed directly in gateway/


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the gateway modules it imports (at any depth: lazy and TYPE_CHECKING imports count too)."""
    paths = {module_name(p, root): p for p in sorted((root / "gateway").rglob("*.py"))}

    def known(name: str) -> str:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        found: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(known(a.name) for a in node.names if a.name.split(".")[0] == "gateway")
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                if base.split(".")[0] != "gateway":
                    continue
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in paths else known(base))
        found.discard(name)
        found.discard("")
        graph[name] = found
    return graph


def package_of(module: str) -> str:
    """``gateway.store.db`` -> ``store``; the root package and its entry modules -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] not in ENTRY_MODULES) else ""


def wrong_way(graph: Mapping[str, set[str]]) -> list[str]:
    """Every import from a package to one of its own layer or a higher one (or to a package with no layer)."""
    found = []
    for module, targets in sorted(graph.items()):
        source = package_of(module)
        for target in sorted(targets):
            into = package_of(target)
            if not source or not into or into == source:
                continue  # the root (__version__) and the entry modules are free; a package may import itself
            if source not in RANK or into not in RANK or RANK[into] >= RANK[source]:
                found.append(f"{module} -> {target}")
    return found


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> Iterator[None]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                yield from visit(target)
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
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            for _ in visit(node):
                pass
    return found


GRAPH = import_graph(ROOT)


def test_there_is_a_pure_core_to_check() -> None:
    assert len(PURE) >= 8
    assert PACKAGE / "core" / "lifecycle.py" in PURE
    assert PACKAGE / "domain" / "model.py" in PURE


@pytest.mark.parametrize("path", PURE, ids=[str(p.relative_to(ROOT)) for p in PURE])
def test_the_core_does_no_io(path: Path) -> None:
    assert imported_roots(path) & IO_LIBRARIES == set()


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_core_imports_only_the_core_and_the_domain() -> None:
    for module, targets in GRAPH.items():
        if package_of(module) in {"core", "domain"}:
            assert {package_of(t) for t in targets} <= {"core", "domain"}, (module, targets)


def test_the_top_level_holds_packages_and_entry_modules_only() -> None:
    loose = {p.stem for p in PACKAGE.glob("*.py")}
    assert loose <= ENTRY_MODULES, loose - ENTRY_MODULES
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(RANK), packages ^ set(RANK)


@pytest.mark.parametrize("package", sorted(RANK))
def test_every_package_says_what_it_owns_and_may_import(package: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
    assert doc, package
    assert "import" in doc, package


def test_packages_import_only_downwards() -> None:
    assert wrong_way(GRAPH) == []


def test_there_are_no_import_circles() -> None:
    assert cycles(GRAPH) == []


def test_the_store_imports_no_feature_package() -> None:
    for module, targets in GRAPH.items():
        if package_of(module) == "store":
            assert {package_of(t) for t in targets} <= {"store", "core", "domain"}, (module, targets)


def write_tree(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_catches_a_wrong_way_import(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "gateway/__init__.py": "",
            "gateway/domain/__init__.py": "",
            "gateway/domain/model.py": "",
            "gateway/store/__init__.py": "",
            "gateway/store/db.py": "from gateway.domain import model\nfrom gateway.web.app import create_app\n",
            "gateway/web/__init__.py": "",
            "gateway/web/app.py": "from gateway.store import db\n",
            "gateway/engine/__init__.py": "",
            "gateway/engine/jobs.py": "def f():\n    from ..runtime import wiring\n",
            "gateway/runtime/__init__.py": "",
            "gateway/runtime/wiring.py": "import gateway.engine.jobs\n",
            "gateway/observability/__init__.py": "",
            "gateway/observability/logs.py": "from gateway.outbound import http\n",
            "gateway/outbound/__init__.py": "",
            "gateway/outbound/http.py": "",
        },
    )
    graph = import_graph(tmp_path)
    assert wrong_way(graph) == [
        "gateway.engine.jobs -> gateway.runtime.wiring",  # a lazy relative import counts
        "gateway.observability.logs -> gateway.outbound.http",  # siblings of one layer stay apart
        "gateway.store.db -> gateway.web.app",
    ]
    assert cycles(graph) == [
        ["gateway.engine.jobs", "gateway.runtime.wiring"],
        ["gateway.store.db", "gateway.web.app"],
    ]


def test_the_checker_passes_a_clean_tree(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "gateway/__init__.py": "",
            "gateway/__main__.py": "from gateway.cli import main\n",
            "gateway/cli/__init__.py": "from gateway import __version__\nfrom gateway.web import app\n",
            "gateway/web/__init__.py": "",
            "gateway/web/app.py": "from gateway.store.db import Row\nfrom . import common\n",
            "gateway/web/common.py": "",
            "gateway/store/__init__.py": "",
            "gateway/store/db.py": "",
        },
    )
    graph = import_graph(tmp_path)
    assert graph["gateway.web.app"] == {"gateway.store.db", "gateway.web.common"}
    assert wrong_way(graph) == []
    assert cycles(graph) == []


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_every_module_starts_with_the_future_import(path: Path) -> None:
    tree = ast.parse(path.read_text())
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the module docstring
    if not body:
        return  # an empty __init__ or one holding only a docstring
    first = body[0]
    assert isinstance(first, ast.ImportFrom) and first.module == "__future__", path
    assert [alias.name for alias in first.names] == ["annotations"]
