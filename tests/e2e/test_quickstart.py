"""The README quickstart, followed literally against the real server process (``gateway serve``)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = Path(sys.executable).parent / "gateway"  # the console script `make` installs next to this Python
DEADLINE = 120.0  # a busy machine can take long to start the server; the probe returns as soon as it is up
SOURCE = {"Authorization": "Bearer demo-token", "Content-Type": "application/cloudevents+json"}
OPERATOR = {"Authorization": "Bearer demo-operator-token"}
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(what: str, probe: Callable[[], T | None], server: subprocess.Popen[bytes], log: Path) -> T:
    """Call ``probe`` until it returns something, the server dies, or the deadline passes."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode} while waiting for {what}:\n{log.read_text()}")
        try:
            found = probe()
        except httpx.TransportError:
            found = None
        if found is not None:
            return found
        time.sleep(0.1)
    pytest.fail(f"timed out after {DEADLINE} s waiting for {what}:\n{log.read_text()}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """`gateway serve` with a copy of config.example.toml, run in tmp_path so ./var lands there."""
    assert GATEWAY.exists(), f"{GATEWAY} is missing: run `make test` (it installs the package)"
    shutil.copy(ROOT / "config.example.toml", tmp_path / "config.toml")
    port = free_port()
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_LOG_LEVEL"] = "WARNING"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(GATEWAY), "serve", "--config", "config.toml", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}", process, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_quickstart(server: tuple[str, subprocess.Popen[bytes], Path], tmp_path: Path) -> None:
    base, process, log = server
    with httpx.Client(base_url=base, timeout=5.0, trust_env=False) as http:
        wait_for("/readyz", lambda: True if http.get("/readyz").status_code == 200 else None, process, log)

        # curl -s -X POST localhost:8000/v1/events -H 'Authorization: Bearer demo-token' \
        #   -H 'Content-Type: application/cloudevents+json' -d @examples/event.json
        answer = http.post("/v1/events", content=(ROOT / "examples" / "event.json").read_bytes(), headers=SOURCE)
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["runs"][0]["id"]

        def open_review() -> dict[str, Any] | None:
            items = http.get("/v1/reviews", headers=OPERATOR).json()["items"]
            return next((item for item in items if item["run_id"] == run_id), None)

        review = wait_for("an open review for the run", open_review, process, log)
        assert review["id"] and review["run_id"] == run_id

        claimed = http.post(f"/v1/reviews/{review['id']}/claim", headers=OPERATOR)
        assert claimed.status_code == 200, claimed.text
        decided = http.post(
            f"/v1/reviews/{review['id']}/decision", json={"input": {"decision": "approve"}}, headers=OPERATOR
        )
        assert 200 <= decided.status_code < 300, decided.text

        def complete() -> dict[str, Any] | None:
            run: dict[str, Any] = http.get(f"/v1/runs/{run_id}", headers=OPERATOR).json()
            return run if run["status"] == "COMPLETE" else None

        run = wait_for("the run to complete", complete, process, log)
        assert run["output"]["decision"] == "approve"

    results = tmp_path / "var" / "out" / "results.jsonl"

    def delivered() -> dict[str, Any] | None:
        lines = results.read_text().splitlines() if results.exists() else []
        found = [json.loads(line) for line in lines if run_id in line]
        return found[0] if found else None

    line = wait_for("the JSONL line for the run", delivered, process, log)
    assert line["run"]["id"] == run_id
    assert line["run"]["status"] == "COMPLETE"
    assert line["output"] == run["output"]
    assert (tmp_path / "var" / "gateway.db").exists()
