"""The real server process: ``python -m gateway serve`` on a free port with a temporary config."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import EXAMPLE_CONFIG


@dataclass(frozen=True)
class LiveServer:
    url: str
    db_path: Path
    log_path: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def live_config(directory: Path, port: int) -> Path:
    text = EXAMPLE_CONFIG.read_text()
    replacements = {
        "port = 8000": f"port = {port}",
        'url = "sqlite:///var/gateway.db"': f'url = "sqlite:///{directory / "gateway.db"}"',
        'path = "var/out/results.jsonl"': f'path = "{directory / "out" / "results.jsonl"}"',
        "step_delay = 0.2": "step_delay = 0.01",
        # schemathesis sends requests without credentials on purpose; throttling them would answer 429 to
        # everything after the first 20 (the throttle has its own tests on a frozen clock)
        "failed_auth = { per_second = 0.2, burst = 20 }": "failed_auth = false",
    }
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path = directory / "gateway.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    # A private directory rather than tmp_path_factory: pytest prunes old base temp directories, and other
    # pytest sessions on the machine must not remove this one while the server runs.
    with tempfile.TemporaryDirectory(prefix="gateway-live-") as name:
        yield from _serve(Path(name))


def _serve(directory: Path) -> Iterator[LiveServer]:
    port = free_port()
    config = live_config(directory, port)
    log_path = directory / "server.log"
    env = {**os.environ, "GATEWAY_LOG_LEVEL": "INFO"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process)
        yield LiveServer(url=url, db_path=directory / "gateway.db", log_path=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("gateway serve did not become healthy in 30 s")
