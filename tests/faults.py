"""Fault injection at the gateway's two HTTP boundaries, in process (RELIABILITY.md T3).

``Fault`` names one bad answer (status, Retry-After, latency, connection reset, timeout, redirect, huge body).
``FakeUpstream`` answers requests through a script of faults, then a fallback, and records every request.
``Rig`` is the gateway wired to a fake Sohar API (``http://provider.test``) and a fake http sink
(``http://sink.test/hook``) through one ``httpx.MockTransport``, with a frozen clock: drive it with ``drain()``
and ``clock.advance()``. The process variants of the same fakes live in tests/crash/.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from gateway.config.settings import parse_settings
from gateway.core import signing
from gateway.runtime.wiring import Services, open_services
from gateway.web.app import create_app
from tests.support import FrozenClock

PROVIDER = "http://provider.test"
SINK_URL = "http://sink.test/hook"
SOURCE_TOKEN = "fault-source-token"
OPERATOR_TOKEN = "fault-operator-token"
SOURCE = {"Authorization": f"Bearer {SOURCE_TOKEN}"}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
WEBHOOK_SECRET = signing.generate_secret(bytes(range(32)))
SINK_SECRET = signing.generate_secret(bytes(range(1, 33)))
ENV = {
    "FAULT_SOURCE_TOKEN": SOURCE_TOKEN,
    "FAULT_OPERATOR_TOKEN": OPERATOR_TOKEN,
    "FAULT_CLIENT_ID": "client",
    "FAULT_CLIENT_SECRET": "client-secret",
    "FAULT_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "FAULT_SINK_SECRET": SINK_SECRET,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # real seconds before answering
    error: type[httpx.TransportError] | None = None  # raised instead of answering
    body_bytes: int = 0  # a streamed body of this many bytes
    applied: bool = False  # the upstream does the work first, then the answer is lost to this fault

    async def answer(self, request: httpx.Request) -> httpx.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error("injected fault", request=request)
        if self.body_bytes:
            return httpx.Response(self.status, headers=self.headers, content=_chunks(self.body_bytes))
        return httpx.Response(self.status, headers=self.headers, json={"error": {"code": "injected"}})


def status(code: int, **headers: str) -> Fault:
    return Fault(status=code, headers={k.replace("_", "-"): v for k, v in headers.items()})


def throttled(retry_after: str) -> Fault:
    return Fault(status=429, headers={"Retry-After": retry_after})


def redirect(location: str, code: int = 302) -> Fault:
    return Fault(status=code, headers={"Location": location})


RESET = Fault(error=httpx.ReadError)  # the connection dropped mid-answer
CONNECT_REFUSED = Fault(error=httpx.ConnectError)
TIMEOUT = Fault(error=httpx.ReadTimeout)
GONE = Fault(status=410)  # the receiver is gone for good: the sink is disabled
ABORT = Fault(status=400, headers={"webhook-delivery": "abort-message"})  # stop retrying this one delivery


def after_applying(fault: Fault) -> Fault:
    """The same fault, but only after the upstream did the work (an answer lost after the effect)."""
    return replace(fault, applied=True)


def huge(size: int, code: int = 200) -> Fault:
    return Fault(status=code, body_bytes=size)


async def _chunks(size: int, chunk: int = 65536) -> AsyncIterator[bytes]:
    sent = 0
    while sent < size:
        part = min(chunk, size - sent)
        sent += part
        yield b"x" * part


class FakeUpstream:
    """Scripted faults first (``script``), then ``always`` if set, then the healthy answer."""

    def __init__(self, healthy: Callable[[httpx.Request], httpx.Response]) -> None:
        self.healthy = healthy
        self.script: list[Fault] = []
        self.always: Fault | None = None
        self.requests: list[httpx.Request] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        fault = self.script.pop(0) if self.script else self.always
        if fault is None:
            return self.healthy(request)
        if fault.applied:
            self.healthy(request)
        return await fault.answer(request)


class FakeSohar:
    """The Sohar API shape: token, create (idempotent per ``Idempotency-Key`` when one is sent), get, update
    (a resume moves the run to IN_PROGRESS; 400 when it is not PENDING). Each call kind has its own faults."""

    def __init__(self) -> None:
        self.runs: dict[str, str] = {}  # provider run id -> status
        self.by_key: dict[str, str] = {}
        self.created: list[str] = []  # every run created, in order
        self.creates = FakeUpstream(self._create)
        self.gets = FakeUpstream(self._get)
        self.updates = FakeUpstream(self._update)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        if request.method == "POST":
            return await self.creates.handle(request)
        if request.method == "PUT":
            return await self.updates.handle(request)
        return await self.gets.handle(request)

    def _create(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("idempotency-key")
        run_id = self.by_key.get(key) if key else None
        if run_id is None:
            run_id = f"fr_{len(self.created) + 1}"
            self.created.append(run_id)
            self.runs[run_id] = "IN_PROGRESS"
            if key:
                self.by_key[key] = run_id
        return httpx.Response(201, json={"flowRunId": run_id})

    def _update(self, request: httpx.Request) -> httpx.Response:
        run_id = request.url.path.rsplit("/", 1)[-1]
        if run_id not in self.runs:
            return httpx.Response(404, json={"error": "not_found"})
        if self.runs[run_id] != "PENDING":
            return httpx.Response(400, json={"error": "invalid_request_error", "message": "run is not paused"})
        self.runs[run_id] = "IN_PROGRESS"
        return httpx.Response(200, json={"flowRunId": run_id, "status": "IN_PROGRESS"})

    def _get(self, request: httpx.Request) -> httpx.Response:
        run_id = request.url.path.rsplit("/", 1)[-1]
        if run_id not in self.runs:
            return httpx.Response(404, json={"error": "not_found"})
        state = self.runs[run_id]
        output = {"result": "ok"} if state == "COMPLETE" else None
        return httpx.Response(200, json={"flowRunId": run_id, "status": state, "output": output})


def _sink_ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(204)


def rig_config(tmp_path: Path, **worker: Any) -> dict[str, Any]:
    return {
        "mode": "demo",  # no data key: payloads are stored unencrypted in these fault tests
        "server": {"public_url": "http://gateway.test"},
        "store": {"url": f"sqlite:///{tmp_path / 'gateway.db'}"},
        "worker": {"concurrency": 1, "poll_interval": 0.05, **worker},
        "operators": {"tokens": [{"name": "op-alice", "token_env": "FAULT_OPERATOR_TOKEN"}]},
        "sources": {"src": {"auth": "bearer", "token_env": "FAULT_SOURCE_TOKEN"}},
        "providers": {
            "sohar": {
                "kind": "sohar",
                "base_url": PROVIDER,
                "client_id_env": "FAULT_CLIENT_ID",
                "client_secret_env": "FAULT_CLIENT_SECRET",
                "webhook_secrets_env": ["FAULT_WEBHOOK_SECRET"],
                "idempotency_header": "Idempotency-Key",  # this fake honours it
                "timeout": 2,
            }
        },
        "flows": {"check": {"provider": "sohar", "template": "auto-check"}},
        "routes": [{"name": "checks", "source": "src", "type": "com.example.check", "flow": "check"}],
        "sinks": {
            "hook": {"kind": "http", "url": SINK_URL, "secret_env": "FAULT_SINK_SECRET", "timeout": 2, "internal": True}
        },
        "outbound": {"allow": ["*.test"]},
    }


@dataclass
class Rig:
    services: Services
    client: httpx.AsyncClient
    clock: FrozenClock
    sohar: FakeSohar
    sink: FakeUpstream
    elsewhere: list[httpx.Request]

    async def drain(self) -> None:
        await self.services.dispatcher.drain()

    async def submit(self, ce_id: str) -> str:
        event = {"specversion": "1.0", "id": ce_id, "source": "/tests", "type": "com.example.check", "data": {}}
        answer = await self.client.post("/v1/events", json=event, headers=SOURCE)
        assert answer.status_code == 202, answer.text
        run_id: str = answer.json()["runs"][0]["id"]
        return run_id

    async def notify(self, provider_run_id: str, status: str, state_id: str | None = None) -> None:
        """The provider's signed flow.updated webhook (with the run's ``stateId`` when given)."""
        message: dict[str, Any] = {"event": "flow.updated", "flowRunId": provider_run_id, "status": status}
        if state_id is not None:
            message["stateId"] = state_id
        body = json.dumps(message).encode()
        msg_id = f"msg_{provider_run_id}_{status}_{state_id}"
        ts = int(self.clock.now().timestamp())
        headers = signing.sign_headers(signing.parse_signing_key(WEBHOOK_SECRET), msg_id, ts, body, prefix="svix")
        answer = await self.client.post("/v1/webhooks/sohar", content=body, headers=headers)
        assert answer.status_code in (200, 202, 204), answer.text

    async def complete(self, ce_id: str) -> str:
        """Submit an event, let its run start, complete it at the provider, and fetch it: a delivery is queued."""
        run_id = await self.submit(ce_id)
        await self.drain()
        run = await self.services.store.get_run(run_id)
        assert run is not None and run.provider_run_id is not None
        self.sohar.runs[run.provider_run_id] = "COMPLETE"
        await self.notify(run.provider_run_id, "COMPLETE")
        return run_id

    async def deliveries(self) -> list[Any]:
        return sorted(
            await self.services.store.list_deliveries(state=None, run_id=None, sink=None, limit=500, before=None),
            key=lambda d: d.created_at,
        )


@asynccontextmanager
async def rig(
    tmp_path: Path,
    *,
    edit: Callable[[dict[str, Any]], None] | None = None,
    env: dict[str, str] | None = None,
    span_exporter: Any = None,
    **worker: Any,
) -> AsyncIterator[Rig]:
    """The fault rig; ``edit`` may change the config document first, ``env`` adds environment variables."""
    data = rig_config(tmp_path, **worker)
    if edit is not None:
        edit(data)
    settings = parse_settings(data, {**ENV, **(env or {})})
    clock = FrozenClock()
    sohar = FakeSohar()
    sink = FakeUpstream(_sink_ok)
    elsewhere: list[httpx.Request] = []

    async def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == "provider.test":
            return await sohar.handle(request)
        if request.url.host == "sink.test":
            return await sink.handle(request)
        elsewhere.append(request)
        return httpx.Response(200)

    transport = httpx.MockTransport(route)
    async with open_services(
        settings, clock=clock, rng=random.Random(7), transport=transport, span_exporter=span_exporter
    ) as services:
        app = create_app(services, run_background=False)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test")
        try:
            yield Rig(services=services, client=client, clock=clock, sohar=sohar, sink=sink, elsewhere=elsewhere)
        finally:
            await client.aclose()
            await services.stop_background()
