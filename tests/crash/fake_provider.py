"""A fake Sohar Flows API in its own process, for the crash harness and process-level fault tests.

Token, Create Run (one run per ``Idempotency-Key``; every create call is counted per key), Get Run, Update Run.
Runs need no input: each goes CREATED -> IN_PROGRESS -> COMPLETE on its own, and every change is announced with a
Svix-signed ``flow.updated`` webhook to the gateway, retried until it is accepted (within ``--webhook-deadline``).
A create is recorded before its (possibly slow) answer, so a gateway killed mid-call leaves a created run behind.

    python -m tests.crash.fake_provider --port P --gateway-url http://127.0.0.1:G --secret-env NAME
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections import Counter, defaultdict
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.core import signing
from tests.crash.knobs import Knobs, control, draw_fault, fault_response, maybe_slow


class FakeProvider:
    def __init__(self, *, gateway_url: str, secret: str, rng: random.Random, knobs: Knobs, deadline: float) -> None:
        self.webhook_url = f"{gateway_url}/v1/webhooks/sohar"
        self.key = signing.parse_signing_key(secret)
        self.rng = rng
        self.knobs = knobs
        self.deadline = deadline
        self.runs: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.create_calls: Counter[str] = Counter()
        self.runs_by_event: defaultdict[str, set[str]] = defaultdict(set)
        self.in_flight = 0
        self.webhooks_pending = 0
        self.webhooks_sent = 0
        self.webhooks_dropped = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.http = httpx.AsyncClient(timeout=3.0)

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/v1/flows/{template}/runs", self.create, methods=["POST"]),
            Route("/v1/flow-runs/{run_id}", self.get, methods=["GET"]),
            Route("/v1/flow-runs/{run_id}", self.update, methods=["PUT"]),
            Route("/_stats", self.stats, methods=["GET"]),
            Route("/_control", lambda r: control(r, self.knobs), methods=["GET", "POST"]),
        ]

    async def token(self, request: Request) -> Response:
        return JSONResponse({"access_token": f"tok_{self.rng.getrandbits(64):x}", "expires_in": 3600})

    async def create(self, request: Request) -> Response:
        fault = draw_fault(self.knobs, self.rng)
        if fault is not None:  # refused before any effect, as an idempotent API would
            return await fault_response(fault, self.knobs)
        key = request.headers.get("idempotency-key", "")
        body = await request.json()
        self.create_calls[key] += 1
        run_id = self.by_key.get(key)
        if run_id is None:
            run_id = f"fr_{len(self.runs) + 1:06d}"
            self.by_key[key] = run_id
            data = body.get("inputData") or {}
            self.runs[run_id] = {"status": "CREATED", "key": key, "event": data.get("eventId")}
            self.runs_by_event[str(data.get("eventId"))].add(run_id)
            self._spawn(self._progress(run_id))
        self.in_flight += 1
        try:
            await maybe_slow(self.knobs, self.rng)  # the run exists; the answer may never arrive
        finally:
            self.in_flight -= 1
        return JSONResponse({"flowRunId": run_id}, status_code=201)

    async def get(self, request: Request) -> Response:
        run = self.runs.get(request.path_params["run_id"])
        if run is None:
            return JSONResponse({"error": {"code": "not_found"}}, status_code=404)
        output = {"eventId": run["event"], "result": "eligible"} if run["status"] == "COMPLETE" else None
        return JSONResponse({"flowRunId": request.path_params["run_id"], "status": run["status"], "output": output})

    async def update(self, request: Request) -> Response:
        return JSONResponse({"error": {"code": "conflict", "message": "run is not pending"}}, status_code=409)

    async def stats(self, request: Request) -> Response:
        return JSONResponse(
            {
                "runs": len(self.runs),
                "completed": sum(1 for r in self.runs.values() if r["status"] == "COMPLETE"),
                "by_key": self.by_key,
                "create_calls": dict(self.create_calls),
                "runs_by_event": {k: sorted(v) for k, v in self.runs_by_event.items()},
                "in_flight": self.in_flight,
                "webhooks_pending": self.webhooks_pending,
                "webhooks_sent": self.webhooks_sent,
                "webhooks_dropped": self.webhooks_dropped,
            }
        )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _progress(self, run_id: str) -> None:
        for status in ("IN_PROGRESS", "COMPLETE"):
            await asyncio.sleep(self.rng.uniform(0.1, 0.8))
            self.runs[run_id]["status"] = status
            self._spawn(self._notify(run_id, status))

    async def _notify(self, run_id: str, status: str) -> None:
        """Post one signed message until a 2xx (same message id on every try); sometimes twice, like Svix."""
        body = json.dumps({"event": "flow.updated", "flowRunId": run_id, "status": status}).encode()
        msg_id = f"msg_{self.rng.getrandbits(96):024x}"
        copies = 2 if self.rng.random() < 0.1 else 1
        self.webhooks_pending += 1
        try:
            for _ in range(copies):
                if not await self._post_until_accepted(msg_id, body):
                    self.webhooks_dropped += 1
                    return
        finally:
            self.webhooks_pending -= 1

    async def _post_until_accepted(self, msg_id: str, body: bytes) -> bool:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.deadline
        while loop.time() < give_up:
            timestamp = int(time.time())
            headers = signing.sign_headers(self.key, msg_id, timestamp, body, prefix="svix")
            headers["content-type"] = "application/json"
            try:
                answer = await self.http.post(self.webhook_url, content=body, headers=headers)
                self.webhooks_sent += 1
                if answer.is_success:
                    return True
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gateway-url", required=True)
    parser.add_argument("--secret-env", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--knobs", default="{}", help="initial knobs as JSON")
    parser.add_argument("--webhook-deadline", type=float, default=120.0)
    args = parser.parse_args()
    knobs = Knobs()
    knobs.update(json.loads(args.knobs))
    fake = FakeProvider(
        gateway_url=args.gateway_url,
        secret=os.environ[args.secret_env],
        rng=random.Random(args.seed),
        knobs=knobs,
        deadline=args.webhook_deadline,
    )
    app = Starlette(routes=fake.routes())
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
