"""A clean install: `make run`, `pip install .` and the Docker image get the runtime dependencies only."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_TOOLS = {"pytest", "pytest-asyncio", "hypothesis", "ruff", "mypy", "playwright", "schemathesis", "py-spy", "svix"}
TEST_TOOLS |= {"standardwebhooks"}


def name_of(requirement: str) -> str:
    return re.split(r"[ <>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_runtime_dependencies_hold_no_test_tool() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {name_of(r) for r in project["dependencies"]}
    assert runtime.isdisjoint(TEST_TOOLS), runtime & TEST_TOOLS
    assert TEST_TOOLS <= {name_of(r) for r in project["optional-dependencies"]["test"]}
    assert {"prometheus-client", "opentelemetry-api", "opentelemetry-sdk"} <= runtime


def test_the_installed_package_metadata_agrees() -> None:
    """What `pip install .` resolves: requirements without an `extra ==` marker."""
    required = metadata.requires("gateway") or []
    unconditional = {name_of(r) for r in required if "extra ==" not in r}
    assert unconditional.isdisjoint(TEST_TOOLS), unconditional & TEST_TOOLS
    assert metadata.entry_points(group="console_scripts", name="gateway"), "pip install . gives no gateway command"


def test_make_run_installs_without_the_test_extra() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("$(BIN)/gateway: pyproject.toml\n", 1)[1].split("\n\n", 1)[0]
    assert "pip install --quiet -e .\n" in recipe + "\n" and "[test]" not in recipe
    assert re.search(r"^run: \$\(BIN\)/gateway$", makefile, re.MULTILINE)
    for target in ("lint", "typecheck", "unit"):
        assert re.search(rf"^{target}: \$\(BIN\)/pytest$", makefile, re.MULTILINE), target


def test_the_docker_image_installs_the_runtime_only() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip (?:install|wheel)[^\n]*", dockerfile)
    assert installs and not any("[" in line or "test" in line for line in installs), installs
