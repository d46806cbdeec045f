"""A fake HTTP sink in its own process: records every delivery it receives, then answers (maybe slowly or badly).

Each request is appended to ``--record`` as one JSON line before the answer: webhook-id, Idempotency-Key, the
run id and delivery id from the body, and whether the Standard Webhooks signature verified. A gateway killed while
waiting for the answer therefore leaves a received delivery behind, which it must send again with the same id.

    python -m tests.crash.fake_sink --port P --record FILE --secret-env NAME
"""

from __future__ import annotations

import argparse
import json
import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.core import signing
from gateway.domain import errors
from tests.crash.knobs import Knobs, control, draw_fault, fault_response, maybe_slow


class FakeSink:
    def __init__(self, *, record: Path, secret: str, rng: random.Random, knobs: Knobs) -> None:
        self.record = record.open("a", encoding="utf-8")
        self.keys = [signing.parse_verify_key(secret)]
        self.rng = rng
        self.knobs = knobs
        self.received = 0
        self.in_flight = 0

    def routes(self) -> list[Route]:
        return [
            Route("/hook", self.hook, methods=["POST"]),
            Route("/_stats", self.stats, methods=["GET"]),
            Route("/_control", lambda r: control(r, self.knobs), methods=["GET", "POST"]),
        ]

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        self._write(self._entry(body, request))
        self.in_flight += 1
        try:
            fault = draw_fault(self.knobs, self.rng)
            if fault is not None:
                return await fault_response(fault, self.knobs)
            await maybe_slow(self.knobs, self.rng)
            return Response(status_code=204)
        finally:
            self.in_flight -= 1

    def _entry(self, body: bytes, request: Request) -> dict[str, Any]:
        try:
            signing.verify(body, request.headers, self.keys, now=datetime.now(UTC), tolerance=300)
            valid = True
        except errors.SignatureError:
            valid = False
        data = json.loads(body)
        return {
            "webhook_id": request.headers.get("webhook-id"),
            "idempotency_key": request.headers.get("idempotency-key"),
            "delivery_id": data.get("delivery_id"),
            "run_id": (data.get("run") or {}).get("id"),
            "signature_valid": valid,
        }

    def _write(self, entry: dict[str, Any]) -> None:
        self.received += 1
        self.record.write(json.dumps(entry) + "\n")
        self.record.flush()

    async def stats(self, request: Request) -> Response:
        return JSONResponse({"received": self.received, "in_flight": self.in_flight})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--secret-env", required=True)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--knobs", default="{}", help="initial knobs as JSON")
    args = parser.parse_args()
    knobs = Knobs()
    knobs.update(json.loads(args.knobs))
    fake = FakeSink(record=args.record, secret=os.environ[args.secret_env], rng=random.Random(args.seed), knobs=knobs)
    app = Starlette(routes=fake.routes())
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
