"""The fake sink for the replica harness: records every delivery it accepts; refuses some at random (503).

``python -m tests.replicas.sink PORT``; ``GET /received`` lists ``{"delivery_id", "run_id", "status"}``.
"""

from __future__ import annotations

import json
import random
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FAILURE_RATE = 0.1


def build(rng: random.Random) -> Starlette:
    received: list[dict[str, str]] = []

    async def deliver(request: Request) -> Response:
        body = json.loads(await request.body())
        if rng.random() < FAILURE_RATE:
            return Response(status_code=503)
        received.append(
            {
                "delivery_id": request.headers["idempotency-key"],
                "run_id": body["run"]["id"],
                "status": body["run"]["status"],
            }
        )
        return Response(status_code=204)

    async def listing(request: Request) -> Response:
        return JSONResponse(received)

    return Starlette(routes=[Route("/deliveries", deliver, methods=["POST"]), Route("/received", listing)])


def main() -> None:
    uvicorn.run(build(random.Random()), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")


if __name__ == "__main__":
    main()
