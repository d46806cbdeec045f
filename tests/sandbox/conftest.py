from __future__ import annotations

import base64
import random
import tomllib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.core.config_types import ParseContext
from gateway.sandbox import SandboxApp, SandboxSettings, create_sandbox_app, parse_sandbox

CLIENT_SECRET = "sandbox-client-secret"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
ENVIRON = {"GATEWAY_SANDBOX_CLIENT_SECRET": CLIENT_SECRET, "GATEWAY_SOHAR_WEBHOOK_SECRET": WEBHOOK_SECRET}
SELF_URL = "http://gateway.test"

# The snippet given to config.example.toml, plus templates the tests need.
SANDBOX_TOML = """
[sandbox]
enabled = true
client_id = "sandbox-client"
client_secret_env = "GATEWAY_SANDBOX_CLIENT_SECRET"
webhook_url = "{self}/v1/webhooks/sohar"
webhook_secret_env = "GATEWAY_SOHAR_WEBHOOK_SECRET"
duplicate_rate = 0.2
step_delay = 0.2
token_ttl = 3600

[sandbox.templates.eligibility-check]
starts_at = "lookup-coverage"
output = { patientId = "$.input.patientId", eligible = "$.coverage.active", decision = "$.review.decision" }
[sandbox.templates.eligibility-check.states.lookup-coverage]
type = "request"
function = "coverage_lookup"
result_path = "coverage"
next = "await-decision"
[sandbox.templates.eligibility-check.states.await-decision]
type = "callback"
result_path = "review"
input_schema = { type = "object", required = ["decision"], properties = { decision = { type = "string", enum = ["approve", "deny"] } } }
next = "route-decision"
[sandbox.templates.eligibility-check.states.route-decision]
type = "choice"
choices = [{ path = "$.review.decision", equals = "approve", next = "approved" }]
default = "denied"
[sandbox.templates.eligibility-check.states.approved]
type = "end"
[sandbox.templates.eligibility-check.states.denied]
type = "end"

[sandbox.templates.auto-check]
starts_at = "lookup-coverage"
output = { patientId = "$.input.patientId", eligible = "$.coverage.active", payer = "$.coverage.payer" }
[sandbox.templates.auto-check.states.lookup-coverage]
type = "request"
function = "coverage_lookup"
result_path = "coverage"
next = "done"
[sandbox.templates.auto-check.states.done]
type = "end"

[sandbox.templates.always-fails]
starts_at = "call"
[sandbox.templates.always-fails.states.call]
type = "request"
function = "fail"
result_path = "result"
next = "done"
[sandbox.templates.always-fails.states.done]
type = "end"

[sandbox.templates.rejects]
starts_at = "check"
output = { echoed = "$.echo.value" }
[sandbox.templates.rejects.states.check]
type = "request"
function = "echo"
result_path = "echo"
next = "route"
[sandbox.templates.rejects.states.route]
type = "choice"
choices = [
  { path = "$.echo.value", in = [1, 2], next = "small" },
  { path = "$.echo.value", not_equals = 3, next = "refused" },
]
[sandbox.templates.rejects.states.small]
type = "end"
[sandbox.templates.rejects.states.refused]
type = "end"
error = true
error_status = 422
error_code = "value_refused"
error_param = "value"
"""  # noqa: E501


class FrozenClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class Receiver:
    """The webhook endpoint: records requests; answers from a script of outcomes, then with ``answer``."""

    def __init__(self, clock: FrozenClock) -> None:
        self.requests: list[httpx.Request] = []
        self.script: list[int | Exception] = []
        self.answer: Callable[[httpx.Request], int] = lambda request: 200
        self._clock = clock

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self._clock.advance(1)
        outcome = self.script.pop(0) if self.script else self.answer(request)
        if isinstance(outcome, Exception):
            raise outcome
        return httpx.Response(outcome)


def load_toml(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads(SANDBOX_TOML)["sandbox"]
    data.update(overrides)
    return data


def parse(data: dict[str, Any]) -> tuple[SandboxSettings | None, ParseContext]:
    ctx = ParseContext(environ=ENVIRON, self_url=SELF_URL)
    return parse_sandbox(data, ctx), ctx


def make_settings(**overrides: Any) -> SandboxSettings:
    settings, ctx = parse(load_toml(**overrides))
    assert ctx.problems == []
    assert settings is not None
    return settings


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2025, 6, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def receiver(clock: FrozenClock) -> Receiver:
    return Receiver(clock)


SandboxFactory = Callable[..., SandboxApp]


@pytest.fixture
async def make_sandbox(clock: FrozenClock, receiver: Receiver) -> AsyncIterator[SandboxFactory]:
    started: list[SandboxApp] = []
    http = httpx.AsyncClient(transport=httpx.MockTransport(receiver))

    def factory(**overrides: Any) -> SandboxApp:
        options = {"step_delay": 0, "duplicate_rate": 0, "webhook_retry_delays": [0, 0], **overrides}
        app = create_sandbox_app(make_settings(**options), http=http, clock=clock, rng=random.Random(7))
        started.append(app)
        return app

    yield factory
    for app in started:
        await app.stop()
    await http.aclose()


@pytest.fixture
async def sandbox(make_sandbox: SandboxFactory) -> SandboxApp:
    app = make_sandbox()
    await app.start()
    return app


@pytest.fixture
async def client(sandbox: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(sandbox) as http:
        yield http


def client_for(sandbox: SandboxApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.asgi), base_url="http://sandbox")


async def bearer(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/oauth/token", json={"client_id": "sandbox-client", "client_secret": CLIENT_SECRET})
    assert response.status_code == 200
    return {"authorization": f"Bearer {response.json()['access_token']}"}
