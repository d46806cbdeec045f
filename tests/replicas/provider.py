"""The fake provider for the replica harness: the Sohar sandbox in its own process.

``python -m tests.replicas.provider PORT REPLICA_URL...``. Webhooks go to the replicas round-robin; a replica
that refuses the connection (killed) is skipped and the next one is tried, as a load balancer would.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from gateway.core.config_types import ParseContext
from gateway.domain.ports import SystemClock
from gateway.sandbox.app import create_sandbox_app
from gateway.sandbox.config import parse_sandbox

SECRETS = {
    "SANDBOX_CLIENT_SECRET": "sandbox-secret-for-local-development-only",
    "SANDBOX_WEBHOOK_SECRET": "whsec_ZGV2ZWxvcG1lbnQtb25seS1zaWduaW5nLXNlY3JldC0wMQ==",
}


class RoundRobin(httpx.AsyncBaseTransport):
    """Sends each request to the next replica; on a connection error, to the one after."""

    def __init__(self, replicas: list[str]) -> None:
        self.replicas = [httpx.URL(url) for url in replicas]
        self.turn = itertools.cycle(range(len(replicas)))
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        start = next(self.turn)
        error: Exception | None = None
        for step in range(len(self.replicas)):
            target = self.replicas[(start + step) % len(self.replicas)]
            request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
            try:
                return await self.inner.handle_async_request(request)
            except httpx.ConnectError as exc:
                error = exc
        assert error is not None
        raise error


def build(replicas: list[str]) -> Starlette:
    ctx = ParseContext(environ=SECRETS)
    data = {
        "enabled": True,
        "client_id": "sandbox-client",
        "client_secret_env": "SANDBOX_CLIENT_SECRET",
        "webhook_url": "http://replicas/v1/webhooks/sohar",
        "webhook_secret_env": "SANDBOX_WEBHOOK_SECRET",
        "duplicate_rate": 0.2,
        "step_delay": 0.05,
        "webhook_retry_delays": [0.2, 0.5, 1.0, 2.0, 4.0, 8.0],
    }
    settings = parse_sandbox(data, ctx)
    assert settings is not None, ctx.problems
    http = httpx.AsyncClient(transport=RoundRobin(replicas), timeout=10)
    sandbox = create_sandbox_app(settings, http=http, clock=SystemClock(), rng=random.Random())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await sandbox.start()
        yield
        await sandbox.stop()
        await http.aclose()

    ready = Route("/ready", lambda request: PlainTextResponse("ok"))
    return Starlette(routes=[ready, Mount("/", app=sandbox.asgi)], lifespan=lifespan)


def main() -> None:
    port, replicas = int(sys.argv[1]), sys.argv[2:]
    config = uvicorn.Config(build(replicas), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
