"""Three gateway processes on one PostgreSQL schema, a fake provider and a fake sink, each its own process.

No proxy: clients pick replicas round-robin and move on to the next one when a replica refuses the connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support import example_data

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def to_toml(data: dict[str, Any]) -> str:
    """Enough TOML for a gateway config: top-level tables of keys with inline values."""
    scalars = [f"{key} = {_inline(value)}" for key, value in data.items() if not isinstance(value, dict)]
    tables = [
        f"[{key}]\n" + "\n".join(f"{json.dumps(k)} = {_inline(v)}" for k, v in value.items())
        for key, value in data.items()
        if isinstance(value, dict)
    ]
    return "\n".join(scalars) + "\n\n" + "\n\n".join(tables) + "\n"


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return json.dumps(value)


def replica_config(tmp: Path, port: int, store_url: str, provider: str, sink: str) -> dict[str, Any]:
    data = example_data(tmp, store_url=store_url)
    data["server"] = {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"}
    data["store"]["pool_size"] = 4
    data["sandbox"] = {"enabled": False}
    data["providers"]["sohar"]["base_url"] = provider
    data["sinks"] = {
        "out": {
            "kind": "http",
            "url": f"{sink}/deliveries",
            "secret_env": "GATEWAY_DEMO_SINK_SECRET",
            "on": ["COMPLETE", "ERROR", "FAILED_TO_START"],
            "flows": ["*"],
            "internal": True,
        }
    }
    data["limits"]["failed_auth"] = False
    data["worker"] = {
        "concurrency": 8,
        "poll_interval": 0.5,
        "lease_seconds": LEASE_SECONDS,
        "delivery_schedule": {"delays": [0, 0.2, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1], "jitter": 0.2},
        "start_backoff": {"base": 0.2, "cap": 1.0, "max_attempts": 30},
        "resume_backoff": {"base": 0.2, "cap": 1.0, "max_attempts": 30},
        "fetch_backoff": {"base": 0.2, "cap": 1.0, "max_attempts": 30},
    }
    return data


@dataclass
class Proc:
    name: str
    argv: list[str]
    url: str
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "GATEWAY_LOG_LEVEL": "WARNING"}
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()
        self.popen = None

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.popen = None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    async def wait_ready(self, path: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while time.monotonic() < deadline:
                if not self.alive:
                    raise RuntimeError(f"{self.name} exited; see {self.log}")
                try:
                    if (await client.get(path)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout} s; see {self.log}")


@dataclass
class Cluster:
    tmp: Path
    store_url: str
    size: int = 3
    replicas: list[Proc] = field(default_factory=list)
    provider: Proc | None = None
    sink: Proc | None = None

    async def start(self) -> None:
        ports = [free_port() for _ in range(self.size)]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        provider_port, sink_port = free_port(), free_port()
        self.provider = Proc(
            "provider",
            [sys.executable, "-m", "tests.replicas.provider", str(provider_port), *urls],
            f"http://127.0.0.1:{provider_port}",
            self.tmp / "provider.log",
        )
        self.sink = Proc(
            "sink",
            [sys.executable, "-m", "tests.replicas.sink", str(sink_port)],
            f"http://127.0.0.1:{sink_port}",
            self.tmp / "sink.log",
        )
        for n, port in enumerate(ports):
            config = self.tmp / f"replica{n}.toml"
            data = replica_config(self.tmp, port, self.store_url, self.provider.url, self.sink.url)
            config.write_text(to_toml(data))
            argv = [sys.executable, "-m", "gateway", "serve", "--config", str(config)]
            self.replicas.append(Proc(f"replica{n}", argv, urls[n], self.tmp / f"replica{n}.log"))
        self.provider.start()
        self.sink.start()
        await self.provider.wait_ready("/ready")
        await self.sink.wait_ready("/received")
        for replica in self.replicas:
            replica.start()
        await asyncio.gather(*(replica.wait_ready("/readyz") for replica in self.replicas))

    async def restart(self, replica: Proc) -> None:
        replica.start()
        await replica.wait_ready("/readyz")

    def stop(self) -> None:
        for proc in [*self.replicas, self.provider, self.sink]:
            if proc is not None:
                proc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log.read_text()[-3000:]}" for p in self.replicas if p.log.exists())
