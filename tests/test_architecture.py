"""House rules that can be checked by reading the source: a pure core, and the future import everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gateway"
MODULES = sorted(PACKAGE.rglob("*.py"))
PURE = sorted([*(PACKAGE / "core").glob("*.py"), PACKAGE / "domain" / "model.py"])
IO_LIBRARIES = {"starlette", "httpx", "aiosqlite", "uvicorn", "sqlite3", "socket", "asyncio"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_there_is_a_pure_core_to_check() -> None:
    assert len(PURE) >= 8
    assert PACKAGE / "core" / "lifecycle.py" in PURE


@pytest.mark.parametrize("path", PURE, ids=[str(p.relative_to(ROOT)) for p in PURE])
def test_the_core_does_no_io(path: Path) -> None:
    assert imported_roots(path) & IO_LIBRARIES == set()


def test_the_core_imports_only_the_core_the_model_and_errors() -> None:
    allowed = {"gateway.core", "gateway.domain", "gateway"}
    for path in PURE:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gateway"):
                names = {node.module} if node.module != "gateway" else {f"gateway.{a.name}" for a in node.names}
                for name in names:
                    assert any(name == a or name.startswith(a + ".") for a in allowed - {"gateway"}), (path, name)


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
