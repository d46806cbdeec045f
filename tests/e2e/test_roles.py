"""``gateway serve --role/--processes``: two API processes and a worker process on one SQLite store carry runs
from event to sink delivery, and the group stops together."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench import workload
from tests.e2e.test_quickstart import GATEWAY, ROOT, free_port

pytestmark = pytest.mark.e2e
DEADLINE = 240.0  # generous: the machine may be shared and busy
EVENTS = 40


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in found.read_text().split()] if found.exists() else []


def _wait(what: str, probe: object, log: Path, more: object = lambda: "") -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            if probe():  # type: ignore[operator]
                return
        except (httpx.TransportError, OSError):
            pass
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what} ({more()}):\n{log.read_text()[-4000:]}")  # type: ignore[operator]


@pytest.fixture
def fake_flow(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """The bench's Sohar-shaped fake in its own process; yields (its port, the gateway port it notifies)."""
    port, gateway_port = free_port(), free_port()
    with (tmp_path / "fake.log").open("wb") as sink:
        fake = subprocess.Popen(
            [sys.executable, "-m", "bench.fakeflow", str(port), str(gateway_port)],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(
            "the fake flow API",
            lambda: httpx.get(f"http://127.0.0.1:{port}/_stats").status_code == 200,
            tmp_path / "fake.log",
        )
        yield port, gateway_port
    finally:
        fake.terminate()
        fake.wait(timeout=15)


def test_api_processes_and_a_worker_deliver_every_run_and_stop_together(
    fake_flow: tuple[int, int], tmp_path: Path
) -> None:
    fake_port, port = fake_flow
    config = tmp_path / "gateway.toml"
    config.write_text(workload.config_text(str(tmp_path / "gateway.db"), fake_port))
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {"GATEWAY_LOG_LEVEL": "WARNING"}
    with log.open("wb") as sink:
        group = subprocess.Popen(
            [str(GATEWAY), "serve", "--config", str(config), "--port", str(port), "--processes", "2"],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait("/readyz", lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200, log)
        children = _children(group.pid)
        assert len(children) == 3  # two API processes and one worker
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=workload.EVENT_HEADERS) as http:
            for n in range(EVENTS):
                answer = http.post("/v1/events", content=workload.event_body("roles", n))
                assert answer.status_code == 202, answer.text

        def delivered() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{fake_port}/_stats") as answer:
                return bool(json.loads(answer.read())["deliveries"] == EVENTS)

        _wait(
            f"{EVENTS} deliveries",
            delivered,
            log,
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{fake_port}/_stats").read(),
        )
    finally:
        group.send_signal(signal.SIGTERM)
        assert group.wait(timeout=60) == 0, log.read_text()[-4000:]
    assert all(not Path(f"/proc/{pid}").exists() for pid in children)


def test_a_worker_runs_as_one_process() -> None:
    done = subprocess.run(
        [str(GATEWAY), "serve", "--config", str(ROOT / "config.example.toml"), "--role", "worker", "--processes", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "worker runs as one process" in done.stderr
