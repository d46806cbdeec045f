"""Every shell and JSON example of README.md that can run on one machine, run as written against the real server.

Shell blocks run line by line with bash in a scratch directory that looks like a checkout after `make run` (the
example config, `examples/`, `.venv/bin/gateway`), with the server on a free port in place of 8000. Placeholders
(REVIEW_ID, RUN_ID, KEY_ID) take the ids the earlier examples printed. A JSON block must match what the shell
command before it printed (`...` stands for more keys, or for the rest of an id). Commands that cannot run here
(`make`, `docker`) are listed in SKIPPED: a new example of another kind makes this test fail until it runs or is
listed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_quickstart import GATEWAY, ROOT, free_port

pytestmark = pytest.mark.e2e

SKIPPED = ("make ", "docker ")  # they start a server or build an image: the test's own server stands in
DEADLINE = 30.0
BLOCK = re.compile(r"^( *)```(sh|json)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def examples(text: str) -> list[tuple[str, str]]:
    return [
        (kind, "\n".join(line[len(indent) :] for line in body.splitlines()))
        for indent, kind, body in BLOCK.findall(text)
    ]


def commands(block: str) -> list[str]:
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def matches(expected: Any, actual: Any) -> bool:
    """``expected`` (from the README) describes ``actual``: its keys are there with equal values; '...' elides."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) >= len(expected) and all(map(matches, expected, actual))
    if isinstance(expected, str) and expected.endswith("..."):
        return isinstance(actual, str) and actual.startswith(expected[:-3])
    return bool(expected == actual)


def readme_json(text: str) -> Any:
    return json.loads(re.sub(r",\s*\.\.\.\s*}", "}", text))


class Shell:
    def __init__(self, cwd: Path, port: int) -> None:
        self.cwd, self.port = cwd, port
        self.ids: dict[str, str] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}

    def run(self, command: str, expect: Any = None) -> str:
        """Run until it succeeds with output (and matches ``expect``): the pipeline may need a moment."""
        line = command.replace("localhost:8000", f"127.0.0.1:{self.port}")
        for name, value in self.ids.items():
            line = line.replace(name, value)
        deadline, last = time.monotonic() + DEADLINE, None
        while time.monotonic() < deadline:
            last = subprocess.run(
                ["bash", "-c", line], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=60
            )
            printed = last.stdout.strip() or last.stderr.strip()
            if last.returncode == 0 and printed and (expect is None or self._fits(last.stdout, expect)):
                return last.stdout
            time.sleep(0.2)
        pytest.fail(
            f"README example failed: {command}\nexit {last and last.returncode}\n{last and last.stdout}"
            f"\n{last and last.stderr}"
        )

    @staticmethod
    def _fits(output: str, expect: Any) -> bool:
        try:
            return matches(expect, json.loads(output))
        except json.JSONDecodeError:
            return False

    def learn(self, output: str) -> None:
        """Keep the ids an example printed for the placeholders of later examples."""
        try:
            data = json.loads(output)
        except json.JSONDecodeError:
            first = output.split("\t", 1)[0].strip()
            if re.fullmatch(r"key_[0-9a-z]+|[0-9a-z_]{6,}", first) and "KEY_ID" not in self.ids:
                self.ids.setdefault("KEY_ID", first)
            return
        if isinstance(data, dict) and data.get("runs"):
            self.ids.setdefault("RUN_ID", data["runs"][0]["id"])
        if isinstance(data, dict) and data.get("items") and str(data["items"][0].get("id", "")).startswith("rev_"):
            self.ids.setdefault("REVIEW_ID", data["items"][0]["id"])


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A directory laid out like a checkout after `make run`."""
    assert GATEWAY.exists(), f"{GATEWAY} is missing: run `make test` (it installs the package)"
    shutil.copy(ROOT / "config.example.toml", tmp_path / "config.example.toml")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "gateway").symlink_to(GATEWAY)
    (tmp_path / "var" / "out").mkdir(parents=True)
    return tmp_path


def test_every_readme_example_runs(scratch: Path) -> None:
    port = free_port()
    shell = Shell(scratch, port)
    log = scratch / "server.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(GATEWAY), "serve", "--config", "config.example.toml", "--port", str(port)],
            cwd=scratch,
            env={**shell.env, "GATEWAY_LOG_LEVEL": "WARNING"},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        ran = check_examples(shell, (ROOT / "README.md").read_text())
    finally:
        server.terminate()
        server.wait(timeout=15)
    assert ran >= 12, "fewer README examples ran than the quickstart, check-config and the desk commands hold"


def check_examples(shell: Shell, readme: str) -> int:
    ran = 0
    blocks = examples(readme)
    for i, (kind, body) in enumerate(blocks):
        if kind == "json":
            continue  # checked with the shell block before it
        follows = blocks[i + 1] if i + 1 < len(blocks) and blocks[i + 1][0] == "json" else None
        for command in commands(body):
            if command.startswith(SKIPPED):
                continue
            expect = readme_json(follows[1]) if follows is not None else None
            shell.learn(shell.run(command, expect))
            ran += 1
    return ran


def test_the_example_parser_reads_the_readme() -> None:
    blocks = examples((ROOT / "README.md").read_text())
    runnable = [c for kind, body in blocks if kind == "sh" for c in commands(body) if not c.startswith(SKIPPED)]
    assert any(c.startswith("curl -s -X POST localhost:8000/v1/events") for c in runnable)
    assert any("check-config config.example.toml" in c for c in runnable)
    assert sum(kind == "json" for kind, _ in blocks) >= 2
    for kind, body in blocks:
        if kind == "json":
            readme_json(body)  # every JSON example is JSON, give or take '...'
    assert matches(readme_json('{"a": "x_...", "b": [1], ...}'), {"a": "x_1", "b": [1, 2], "c": 3})
    assert not matches(readme_json('{"next_before": null}'), {"items": [], "next_after": None})


def test_the_providers_table_names_kinds_the_config_takes_and_links_stay_inside() -> None:
    from gateway.providers import PROVIDERS

    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Providers", 1)[1].split("| Provider (`kind`)", 1)[1].split("\n\n", 1)[0]
    kinds = re.findall(r"^\| [^|(]+\(`([a-z_]+)`", table, re.MULTILINE)
    assert sorted(kinds) == sorted(PROVIDERS)
    assert "../" not in readme and "/work/" not in readme
