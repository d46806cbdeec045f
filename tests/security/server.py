"""The real server process for the attack tests: ``python -m gateway serve`` on a free port, config.example.toml
with its files in a temp dir and chosen ``[server]`` and ``[limits]`` settings; raw sockets to talk to it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import EXAMPLE_CONFIG

DEADLINE = 30.0
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Server:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    directory: Path
    config: Path

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def open_files(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
        sock.settimeout(DEADLINE)
        return sock

    def add_operator(self, name: str, password: str = PASSWORD) -> None:
        argv = [sys.executable, "-m", "gateway", "operators", "add", name, "--role", "reviewer", "--password-stdin"]
        argv += ["--config", str(self.config)]
        subprocess.run(argv, input=f"{password}\n".encode(), check=True, capture_output=True, cwd=self.directory)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(
    directory: Path, port: int, *, server: str = "", failed_auth: str | None = None, extra: str = ""
) -> Path:
    text = EXAMPLE_CONFIG.read_text()
    replacements = {
        "port = 8000": f"port = {port}\n{server}",
        'url = "sqlite:///var/gateway.db"': f'url = "sqlite:///{directory / "gateway.db"}"',
        'path = "var/out/results.jsonl"': f'path = "{directory / "out" / "results.jsonl"}"',
        "step_delay = 0.2": "step_delay = 0.01",
    }
    if failed_auth is not None:
        replacements["failed_auth = { per_second = 0.2, burst = 20 }"] = f"failed_auth = {failed_auth}"
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path = directory / "gateway.toml"
    path.write_text(text + extra)
    return path


@contextmanager
def running_server(
    directory: Path,
    *,
    server: str = "",
    failed_auth: str | None = None,
    args: tuple[str, ...] = (),
    log_level: str = "WARNING",
    extra: str = "",
    environ: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Serve until the block ends; ``server`` is extra TOML for the [server] table, ``extra`` more tables at the end
    of the config, ``environ`` more environment variables; logs go to server.log."""
    port = free_port()
    config = write_config(directory, port, server=server, failed_auth=failed_auth, extra=extra)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_LOG_LEVEL"] = log_level
    env.update(environ or {})
    with open(directory / "server.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
            env=env,
        )
    running = Server(url=f"http://127.0.0.1:{port}", port=port, process=process, directory=directory, config=config)
    try:
        wait_healthy(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = (server.directory / "server.log").read_text()
            raise RuntimeError(f"gateway serve exited with {server.process.returncode}:\n{log}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gateway serve did not become healthy in {DEADLINE} s")


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (b"" when it closes without a word)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, BrokenPipeError):
        pass
    return b"".join(chunks)


def status_of(answer: bytes) -> int | None:
    if not answer.startswith(b"HTTP/1.1 "):
        return None
    return int(answer[9:12])
