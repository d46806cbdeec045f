"""A zero-latency, Sohar-shaped flow API in its own process, and a sink that counts deliveries.

Create Run answers at once with a run that is already COMPLETE and queues a signed ``flow.updated``
notification to the gateway; Get Run answers COMPLETE with a small output. ``POST /sink`` is an HTTP sink.

    python -m bench.fakeflow PORT GATEWAY_PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.loadgen import Connection, post
from gateway.core import signing
from gateway.serving import server as serving

WEBHOOK_SECRET = "whsec_ZGV2ZWxvcG1lbnQtb25seS1zaWduaW5nLXNlY3JldC0wMQ=="
SENDERS = 16


class Fake:
    def __init__(self, gateway_port: int) -> None:
        self.gateway_port = gateway_port
        self.key = signing.parse_signing_key(WEBHOOK_SECRET)
        self.by_key: dict[str, str] = {}
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.stats: dict[str, Any] = {
            "runs_created": 0,
            "webhooks_sent": 0,
            "webhook_failures": 0,
            "deliveries": 0,
            "first_delivery": None,
            "last_delivery": None,
        }
        self.delivered: set[str] = set()
        self.delivery_times: list[float] = []

    async def token(self, request: Request) -> Response:
        return JSONResponse({"access_token": "fake-token", "token_type": "Bearer", "expires_in": 3600})

    async def create_run(self, request: Request) -> Response:
        json.loads(await request.body())
        key = request.headers.get("idempotency-key", "")
        run_id = self.by_key.get(key)
        if run_id is None:
            run_id = f"fr-{len(self.by_key) + 1:09d}"
            self.by_key[key] = run_id
            self.stats["runs_created"] += 1
            self.queue.put_nowait(run_id)
        return JSONResponse({"flowRunId": run_id}, status_code=201)

    async def get_run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        return JSONResponse({"flowRunId": run_id, "status": "COMPLETE", "output": {"eligible": True}, "errors": []})

    async def sink(self, request: Request) -> Response:
        await request.body()
        delivery = request.headers.get("webhook-id", "")
        if delivery not in self.delivered:
            self.delivered.add(delivery)
            now = time.time()
            self.stats["deliveries"] += 1
            self.stats["first_delivery"] = self.stats["first_delivery"] or now
            self.stats["last_delivery"] = now
            self.delivery_times.append(now)
        return Response(status_code=200)

    async def show_stats(self, request: Request) -> Response:
        times = self.delivery_times
        return JSONResponse({**self.stats, "median_delivery": times[len(times) // 2] if times else None})

    def notification(self, run_id: str, seq: int) -> bytes:
        body = json.dumps(
            {"event": "flow.updated", "flowRunId": run_id, "status": "COMPLETE", "stateId": "done"}
        ).encode()
        headers = signing.sign_headers(self.key, f"msg_{run_id}_{seq}", int(time.time()), body, prefix="svix")
        headers["content-type"] = "application/json"
        return post("/v1/webhooks/sohar", body, headers)

    async def sender(self) -> None:
        conn: Connection | None = None
        while True:
            run_id = await self.queue.get()
            for attempt in range(20):
                try:
                    conn = conn or await Connection.open("127.0.0.1", self.gateway_port)
                    status = await conn.request(self.notification(run_id, attempt))
                except OSError:
                    status = 0
                    conn = None
                if 200 <= status < 300:
                    self.stats["webhooks_sent"] += 1
                    break
                self.stats["webhook_failures"] += 1
                await asyncio.sleep(0.2)


def create_app(gateway_port: int) -> Starlette:
    fake = Fake(gateway_port)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(fake.sender()) for _ in range(SENDERS)]
        yield
        for task in tasks:
            task.cancel()

    return Starlette(
        routes=[
            Route("/oauth/token", fake.token, methods=["POST"]),
            Route("/v1/flows/{template}/runs", fake.create_run, methods=["POST"]),
            Route("/v1/flow-runs/{run_id}", fake.get_run, methods=["GET"]),
            Route("/sink", fake.sink, methods=["POST"]),
            Route("/_stats", fake.show_stats, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


async def _main(port: int, gateway_port: int) -> None:
    import uvicorn

    app = create_app(gateway_port)
    await uvicorn.Server(serving.server_config(app, host="127.0.0.1", port=port)).serve()


if __name__ == "__main__":
    serving.run(_main(int(sys.argv[1]), int(sys.argv[2])))
