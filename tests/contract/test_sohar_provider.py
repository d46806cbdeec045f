from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from svix.webhooks import Webhook

from gateway import providers
from gateway.core import signing
from gateway.core.config_types import ParseContext, Secret
from gateway.domain import errors
from gateway.domain.model import PendingInput, RunStatus
from gateway.domain.ports import Provider, PushKind
from gateway.providers import sohar

PAYLOADS = Path(__file__).parent.parent / "payloads" / "sohar"
BASE = "https://sohar.test"
RUN_ID = "5f0c9a4e-2b7d-4c1e-9f3a-8d6b2e4a1c70"
TEMPLATE = "0b6f3c2d-9e8a-4d7b-a1c5-3f2e9d8c7b6a"
WEBHOOK_SECRET = signing.generate_secret(bytes(range(32)))
OTHER_SECRET = signing.generate_secret(bytes(range(100, 132)))
T0 = datetime(2025, 3, 4, 12, 0, 0, tzinfo=UTC)


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def raw_payload(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes().strip()


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


Handler = Callable[[httpx.Request], httpx.Response]


class FakeSohar:
    """Sohar's API over MockTransport: issues numbered tokens, answers routes with recorded payloads."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.tokens_issued = 0
        self.valid_tokens: set[str] = set()
        self.routes: dict[tuple[str, str], Handler] = {}

    def route(self, method: str, path: str, body: Any = None, status: int = 200, **headers: str) -> None:
        self.routes[(method, path)] = lambda request: httpx.Response(status, json=body, headers=headers)

    def revoke_tokens(self) -> None:
        self.valid_tokens.clear()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/oauth/token":
            for _ in range(3):
                await asyncio.sleep(0)  # let concurrent callers pile up while the token is fetched
            self.tokens_issued += 1
            token = f"token-{self.tokens_issued}"
            self.valid_tokens.add(token)
            return httpx.Response(200, json={**payload("token"), "access_token": token})
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid_tokens:
            return httpx.Response(401, json={"message": "Unauthorized"})
        handler = self.routes.get((request.method, request.url.path))
        return handler(request) if handler else httpx.Response(404, json={"message": "Not Found"})

    def api_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path != "/oauth/token"]


def settings(**overrides: Any) -> sohar.SoharSettings:
    values: dict[str, Any] = {
        "name": "sohar",
        "base_url": BASE,
        "client_id": Secret("client-id-1", env="SOHAR_CLIENT_ID"),
        "client_secret": Secret("client-secret-1", env="SOHAR_CLIENT_SECRET"),
        "webhook_secrets": [signing.parse_verify_key(OTHER_SECRET), signing.parse_verify_key(WEBHOOK_SECRET)],
    }
    return sohar.SoharSettings(**{**values, **overrides})


@pytest.fixture
def api() -> FakeSohar:
    return FakeSohar()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def provider(api: FakeSohar, clock: FakeClock) -> AsyncIterator[sohar.SoharProvider]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(api)) as http:
        yield sohar.build(settings(), http=http, clock=clock)


# registry and shape


def test_registry_imports_the_module() -> None:
    module: providers.ProviderModule = sohar  # mypy checks the module against the plug-in contract
    assert providers.provider_module("sohar") is module
    with pytest.raises(KeyError):
        providers.provider_module("nope")


async def test_provider_satisfies_the_port(provider: sohar.SoharProvider) -> None:
    port: Provider = provider
    assert port.name == "sohar"
    assert port.capabilities.can_resume and not port.capabilities.can_cancel
    assert port.capabilities.push is PushKind.WEBHOOK
    with pytest.raises(errors.UnsupportedOperation):
        await port.cancel_run(RUN_ID)
    await port.aclose()


# OAuth


async def test_token_request_shape(provider: sohar.SoharProvider, api: FakeSohar) -> None:
    api.route("GET", f"/v1/flow-runs/{RUN_ID}", payload("get_run_created"))
    await provider.get_run(RUN_ID)
    token_request, call = api.requests
    assert token_request.method == "POST"
    assert token_request.url == f"{BASE}/oauth/token"
    assert token_request.headers["Content-Type"] == "application/json"
    assert json.loads(token_request.content) == {
        "client_id": "client-id-1",
        "client_secret": "client-secret-1",
    }
    assert call.headers["Authorization"] == "Bearer token-1"


async def test_token_is_cached_then_renewed_before_expiry(
    provider: sohar.SoharProvider, api: FakeSohar, clock: FakeClock
) -> None:
    api.route("GET", f"/v1/flow-runs/{RUN_ID}", payload("get_run_created"))
    await provider.get_run(RUN_ID)
    clock.advance(3600 - 60 - 1)  # expires_in 3600, margin 60: still fresh
    await provider.get_run(RUN_ID)
    assert api.tokens_issued == 1
    clock.advance(1)  # inside the margin: renewed before Sohar would reject it
    await provider.get_run(RUN_ID)
    assert api.tokens_issued == 2
    assert [r.headers["Authorization"] for r in api.api_requests()] == [
        "Bearer token-1",
        "Bearer token-1",
        "Bearer token-2",
    ]


async def test_margin_never_exceeds_half_the_token_lifetime(api: FakeSohar, clock: FakeClock) -> None:
    api.route("GET", f"/v1/flow-runs/{RUN_ID}", payload("get_run_created"))
    async with httpx.AsyncClient(transport=httpx.MockTransport(api)) as http:
        provider = sohar.build(settings(token_refresh_margin=3600.0), http=http, clock=clock)
        await provider.get_run(RUN_ID)
        await provider.get_run(RUN_ID)
        assert api.tokens_issued == 1
        clock.advance(1800)
        await provider.get_run(RUN_ID)
        assert api.tokens_issued == 2


async def test_401_renews_the_token_and_retries_once(provider: sohar.SoharProvider, api: FakeSohar) -> None:
    api.route("GET", f"/v1/flow-runs/{RUN_ID}", payload("get_run_in_progress"))
    await provider.get_run(RUN_ID)
    api.revoke_tokens()
    snapshot = await provider.get_run(RUN_ID)
    assert snapshot.status is RunStatus.IN_PROGRESS
    assert api.tokens_issued == 2
    assert [r.headers["Authorization"] for r in api.api_requests()] == [
        "Bearer token-1",
        "Bearer token-1",
        "Bearer token-2",
    ]


async def test_401_after_the_retry_is_permanent(provider: sohar.SoharProvider, api: FakeSohar) -> None:
    api.route("GET", f"/v1/flow-runs/{RUN_ID}", {"message": "Unauthorized"}, status=401)
    with pytest.raises(errors.PermanentProviderError) as caught:
        await provider.get_run(RUN_ID)
    assert caught.value.status_code == 401
    assert len(api.api_requests()) == 2
    assert api.tokens_issued == 2


async def test_rejected_credentials_are_permanent_without_a_loop(api: FakeSohar, clock: FakeClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        api.requests.append(request)
        return httpx.Response(401, json={"error": "invalid_client"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        provider = sohar.build(settings(), http=http, clock=clock)
        with pytest.raises(errors.PermanentProviderError, match=r"^POST /oauth/token answered 401$"):
            await provider.get_run(RUN_ID)
    assert len(api.requests) == 1


@pytest.mark.parametrize("body", [{"token_type": "Bearer"}, {"access_token": ""}, ["not", "an", "object"]])
async def test_unreadable_token_answer_is_permanent(body: Any, clock: FakeClock) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    async with httpx.AsyncClient(transport=transport) as http:
        provider = sohar.build(settings(), http=http, clock=clock)
        with pytest.raises(errors.PermanentProviderError, match="access_token"):
            await provider.get_run(RUN_ID)


async def test_concurrent_calls_share_one_token_fetch(provider: sohar.SoharProvider, api: FakeSohar) -> None:
    api.route("GET", f"/v1/flow-runs/{RUN_ID}", payload("get_run_in_progress"))
    snapshots = await asyncio.gather(*(provider.get_run(RUN_ID) for _ in range(5)))
    assert api.tokens_issued == 1
    assert {s.status for s in snapshots} == {RunStatus.IN_PROGRESS}


async def test_concurrent_401s_share_one_renewal(provider: sohar.SoharProvider, api: FakeSohar) -> None:
    api.route("GET", f"/v1/flow-runs/{RUN_ID}", payload("get_run_in_progress"))
    await provider.get_run(RUN_ID)
    api.revoke_tokens()
    await asyncio.gather(*(provider.get_run(RUN_ID) for _ in range(4)))
    assert api.tokens_issued == 2


# Create / Get / Update Run


async def test_create_run_request_and_snapshot(provider: sohar.SoharProvider, api: FakeSohar) -> None:
    api.route("POST", f"/v1/flows/{TEMPLATE}/runs", payload("create_run"), status=201)
    snapshot = await provider.create_run(TEMPLATE, {"memberId": "M-1"}, idempotency_key="run_01J8")
    (request,) = api.api_requests()
    assert request.method == "POST"
    assert request.url == f"{BASE}/v1/flows/{TEMPLATE}/runs"
    assert json.loads(request.content) == {"inputData": {"memberId": "M-1"}}
    assert "Idempotency-Key" not in request.headers  # Sohar documents none for Flows
    assert not provider.idempotent_start
    assert request.headers["Authorization"] == "Bearer token-1"
    assert snapshot.provider_run_id == RUN_ID
    assert snapshot.status is RunStatus.CREATED
    assert snapshot.provider_status == "CREATED"


async def test_a_configured_idempotency_header_carries_the_key(api: FakeSohar, clock: FakeClock) -> None:
    api.route("POST", f"/v1/flows/{TEMPLATE}/runs", payload("create_run"), status=201)
    async with httpx.AsyncClient(transport=httpx.MockTransport(api)) as http:
        provider = sohar.build(settings(idempotency_header="Idempotency-Key"), http=http, clock=clock)
        await provider.create_run(TEMPLATE, {"memberId": "M-1"}, idempotency_key="run_01J8")
    (request,) = api.api_requests()
    assert request.headers["Idempotency-Key"] == "run_01J8"
    assert provider.idempotent_start


@pytest.mark.parametrize("body", [{}, {"flowRunId": ""}, {"flowRunId": 7}, ["x"], None])
async def test_create_run_without_a_run_id_is_permanent(
    provider: sohar.SoharProvider, api: FakeSohar, body: Any
) -> None:
    api.route("POST", f"/v1/flows/{TEMPLATE}/runs", body, status=201)
    with pytest.raises(errors.PermanentProviderError) as caught:
        await provider.create_run(TEMPLATE, {"memberId": "M-1"}, idempotency_key="k")
    assert "M-1" not in caught.value.message
    assert caught.value.maybe_applied  # a 2xx: the run may well exist


async def test_ids_cannot_escape_their_path_segment(provider: sohar.SoharProvider, api: FakeSohar) -> None:
    with pytest.raises(errors.PermanentProviderError) as caught:
        await provider.get_run("../../oauth/token?x=1")
    assert caught.value.status_code == 404
    assert api.api_requests()[0].url.raw_path == b"/v1/flow-runs/..%2F..%2Foauth%2Ftoken%3Fx%3D1"
    with pytest.raises(errors.PermanentProviderError):
        await provider.get_run("..")


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("get_run_created", RunStatus.CREATED),
        ("get_run_in_progress", RunStatus.IN_PROGRESS),
        ("get_run_pending", RunStatus.PENDING),
        ("get_run_complete", RunStatus.COMPLETE),
        ("get_run_error", RunStatus.ERROR),
    ],
)
async def test_get_run_maps_every_status(
    provider: sohar.SoharProvider, api: FakeSohar, name: str, status: RunStatus
) -> None:
    body = payload(name)
    api.route("GET", f"/v1/flow-runs/{RUN_ID}", body)
    snapshot = await provider.get_run(RUN_ID)
    (request,) = api.api_requests()
    assert request.method == "GET"
    assert request.url == f"{BASE}/v1/flow-runs/{RUN_ID}"
    assert request.headers["Authorization"] == "Bearer token-1"
    assert snapshot.provider_run_id == RUN_ID
    assert snapshot.status is status
    assert snapshot.provider_status == body["status"]
    assert snapshot.output == body["output"]


async def test_complete_run_carries_output(provider: sohar.SoharProvider, api: FakeSohar) -> None:
    api.route("GET", f"/v1/flow-runs/{RUN_ID}", payload("get_run_complete"))
    snapshot = await provider.get_run(RUN_ID)
    assert snapshot.output == payload("get_run_complete")["output"]
    assert snapshot.error is None
    assert snapshot.pending is None


async def test_error_run_carries_errors(provider: sohar.SoharProvider, api: FakeSohar) -> None:
    api.route("GET", f"/v1/flow-runs/{RUN_ID}", payload("get_run_error"))
    snapshot = await provider.get_run(RUN_ID)
    assert snapshot.status is RunStatus.ERROR
    assert snapshot.error == {
        "errors": [
            {
                "status": 400,
                "param": "memberId",
                "error": "invalid_request_error",
                "state": "create-verification",
            }
        ]
    }


async def test_pending_run_takes_the_state_hint(provider: sohar.SoharProvider, api: FakeSohar) -> None:
    api.route("GET", f"/v1/flow-runs/{RUN_ID}", payload("get_run_pending"))
    snapshot = await provider.get_run(RUN_ID, state_hint="review-coverage")
    assert snapshot.pending == PendingInput(key="review-coverage", kind="callback")
    assert (await provider.get_run(RUN_ID)).pending == PendingInput(key=None, kind="callback")


@pytest.mark.parametrize(
    ("body", "provider_status"),
    [
        ({"flowRunId": RUN_ID, "status": "PAUSED_FOR_REVIEW", "output": {}}, "PAUSED_FOR_REVIEW"),
        ({"flowRunId": RUN_ID, "status": "complete"}, "complete"),
        ({"flowRunId": RUN_ID, "status": 3}, ""),
        ({"flowRunId": RUN_ID}, ""),
    ],
)
async def test_unknown_status_is_unknown(
    provider: sohar.SoharProvider, api: FakeSohar, body: Any, provider_status: str
) -> None:
    api.route("GET", f"/v1/flow-runs/{RUN_ID}", body)
    snapshot = await provider.get_run(RUN_ID)
    assert snapshot.status is RunStatus.UNKNOWN
    assert snapshot.provider_status == provider_status


async def test_get_run_is_lenient_about_extra_and_odd_fields(provider: sohar.SoharProvider, api: FakeSohar) -> None:
    body = {"status": "COMPLETE", "output": "not-an-object", "errors": "nope", "newField": {"a": 1}}
    api.route("GET", f"/v1/flow-runs/{RUN_ID}", body)
    snapshot = await provider.get_run(RUN_ID)
    assert snapshot.provider_run_id == RUN_ID
    assert snapshot.status is RunStatus.COMPLETE
    assert snapshot.output is None
    assert snapshot.error is None


@pytest.mark.parametrize("content", [b"", b"<html>oops Jane Roe</html>", b"[1, 2]", b'"COMPLETE"'])
async def test_unreadable_get_run_answer_is_permanent(
    provider: sohar.SoharProvider, api: FakeSohar, content: bytes
) -> None:
    api.routes[("GET", f"/v1/flow-runs/{RUN_ID}")] = lambda request: httpx.Response(200, content=content)
    with pytest.raises(errors.PermanentProviderError) as caught:
        await provider.get_run(RUN_ID)
    assert caught.value.message == f"Get Run for run {RUN_ID} answered an unreadable body"


async def test_resume_run_request_and_snapshot(provider: sohar.SoharProvider, api: FakeSohar) -> None:
    api.route("PUT", f"/v1/flow-runs/{RUN_ID}", payload("update_run"))
    pending = PendingInput(key="review-coverage")
    snapshot = await provider.resume_run(RUN_ID, pending, {"approved": True})
    (request,) = api.api_requests()
    assert request.method == "PUT"
    assert request.url == f"{BASE}/v1/flow-runs/{RUN_ID}"
    assert json.loads(request.content) == {"input": {"approved": True}}
    assert request.headers["Authorization"] == "Bearer token-1"
    assert snapshot is not None
    assert snapshot.provider_run_id == RUN_ID
    assert snapshot.status is RunStatus.IN_PROGRESS
    assert snapshot.provider_status == "IN_PROGRESS"


@pytest.mark.parametrize("body", [None, {}, {"flowRunId": RUN_ID}])
async def test_resume_answer_without_status_gives_no_snapshot(
    provider: sohar.SoharProvider, api: FakeSohar, body: Any
) -> None:
    api.route("PUT", f"/v1/flow-runs/{RUN_ID}", body)
    assert await provider.resume_run(RUN_ID, None, {"approved": True}) is None


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, errors.PermanentProviderError),
        (403, errors.PermanentProviderError),
        (404, errors.PermanentProviderError),
        (429, errors.TransientProviderError),
        (500, errors.TransientProviderError),
        (502, errors.TransientProviderError),
        (503, errors.TransientProviderError),
        (504, errors.TransientProviderError),
        (302, errors.PermanentProviderError),
    ],
)
async def test_api_errors_are_classified(
    provider: sohar.SoharProvider, api: FakeSohar, status: int, error: type[errors.ProviderError]
) -> None:
    api.route("PUT", f"/v1/flow-runs/{RUN_ID}", {"detail": "member Jane Roe"}, status=status, Location="/x")
    with pytest.raises(error) as caught:
        await provider.resume_run(RUN_ID, None, {"approved": True})
    assert type(caught.value) is error
    assert caught.value.status_code == status
    assert caught.value.message == f"PUT /v1/flow-runs/{RUN_ID} answered {status}"
    assert len(api.api_requests()) == 1


async def test_429_retry_after_reaches_the_caller(provider: sohar.SoharProvider, api: FakeSohar) -> None:
    api.route("GET", f"/v1/flow-runs/{RUN_ID}", {}, status=429, **{"Retry-After": "17"})
    with pytest.raises(errors.TransientProviderError) as caught:
        await provider.get_run(RUN_ID)
    assert caught.value.retry_after == 17.0


async def test_connection_error_is_transient(clock: FakeClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        provider = sohar.build(settings(), http=http, clock=clock)
        with pytest.raises(errors.TransientProviderError, match=r"^POST /oauth/token failed"):
            await provider.get_run(RUN_ID)


# Notifications


def signed(body: bytes, *, secret: str = WEBHOOK_SECRET, at: datetime = T0, msg_id: str = "msg_2x9") -> dict[str, str]:
    key = signing.parse_signing_key(secret)
    return signing.sign_headers(key, msg_id, int(at.timestamp()), body, prefix="svix")


@pytest.mark.parametrize(
    ("name", "status", "state_id"),
    [
        ("webhook_flow_updated", "PENDING", "review-coverage"),
        ("webhook_sandbox_flow_updated", "COMPLETE", "create-verification"),
    ],
)
async def test_notification_is_verified_and_parsed(
    provider: sohar.SoharProvider, name: str, status: str, state_id: str
) -> None:
    body = raw_payload(name)
    notification = await provider.parse_notification(body, signed(body), T0 + timedelta(seconds=30))
    assert notification.provider == "sohar"
    assert notification.message_id == "msg_2x9"
    assert notification.provider_run_id == RUN_ID
    assert notification.status == status
    assert notification.state_id == state_id
    assert notification.event_type == json.loads(body)["event"]


async def test_notification_signed_by_the_svix_library(provider: sohar.SoharProvider) -> None:
    body = raw_payload("webhook_flow_updated")
    signature = Webhook(WEBHOOK_SECRET).sign("msg_svix1", T0, body.decode())
    headers = {
        "Svix-Id": "msg_svix1",
        "Svix-Timestamp": str(int(T0.timestamp())),
        "Svix-Signature": signature,
    }
    notification = await provider.parse_notification(body, headers, T0)
    assert notification.message_id == "msg_svix1"


async def test_notification_with_a_bad_signature_is_refused(provider: sohar.SoharProvider) -> None:
    body = raw_payload("webhook_flow_updated")
    with pytest.raises(errors.SignatureError) as caught:
        await provider.parse_notification(body, signed(body, secret=signing.generate_secret(b"z" * 32)), T0)
    assert not caught.value.malformed
    tampered = body.replace(b"PENDING", b"COMPLETE")
    with pytest.raises(errors.SignatureError):
        await provider.parse_notification(tampered, signed(body), T0)


async def test_notification_without_headers_is_malformed(provider: sohar.SoharProvider) -> None:
    body = raw_payload("webhook_flow_updated")
    headers = signed(body)
    del headers["svix-signature"]
    with pytest.raises(errors.SignatureError) as caught:
        await provider.parse_notification(body, headers, T0)
    assert caught.value.malformed


@pytest.mark.parametrize("offset", [-301, 301])
async def test_notification_outside_the_tolerance_is_refused(provider: sohar.SoharProvider, offset: int) -> None:
    body = raw_payload("webhook_flow_updated")
    with pytest.raises(errors.SignatureError) as caught:
        await provider.parse_notification(body, signed(body), T0 + timedelta(seconds=offset))
    assert not caught.value.malformed


async def test_tolerance_setting_is_used(api: FakeSohar, clock: FakeClock) -> None:
    body = raw_payload("webhook_flow_updated")
    async with httpx.AsyncClient(transport=httpx.MockTransport(api)) as http:
        provider = sohar.build(settings(tolerance=30), http=http, clock=clock)
        await provider.parse_notification(body, signed(body), T0 + timedelta(seconds=30))
        with pytest.raises(errors.SignatureError):
            await provider.parse_notification(body, signed(body), T0 + timedelta(seconds=31))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json, patient Jane Roe", "notification body is not JSON"),
        (b"\xff\xfe\x00", "notification body is not JSON"),
        (b'["flow.updated"]', "notification body is not a JSON object"),
        (b'{"event": "flow.updated", "status": "COMPLETE"}', "notification has no flowRunId"),
        (b'{"event": "flow.updated", "flowRunId": 12}', "notification has no flowRunId"),
        (b'{"flowRunId": "r"}', "notification has no event type"),
        (b'{"event": 7, "flowRunId": "r"}', "notification has no event type"),
    ],
)
async def test_bad_body_after_a_good_signature_is_a_bad_request(
    provider: sohar.SoharProvider, body: bytes, message: str
) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        await provider.parse_notification(body, signed(body), T0)
    assert type(caught.value) is errors.BadRequest
    assert caught.value.message == message


async def test_other_sohar_events_are_ignored_once_verified(provider: sohar.SoharProvider) -> None:
    body = raw_payload("webhook_verification_updated")
    assert await provider.parse_notification(body, signed(body), T0) is None
    with pytest.raises(errors.SignatureError):
        await provider.parse_notification(body, signed(b"{}"), T0)


async def test_signature_is_checked_before_the_body_is_parsed(provider: sohar.SoharProvider) -> None:
    with pytest.raises(errors.SignatureError):
        await provider.parse_notification(b"{not json", signed(b"{other"), T0)


# settings

ENVIRON = {
    "SOHAR_ID": "cid",
    "SOHAR_SECRET": "csecret",
    "SOHAR_WH_1": WEBHOOK_SECRET,
    "SOHAR_WH_2": OTHER_SECRET,
}


def test_parse_settings_full() -> None:
    ctx = ParseContext(environ=ENVIRON, self_url="http://127.0.0.1:9000/")
    data = {
        "kind": "sohar",
        "base_url": "{self}/sandbox/sohar/",
        "client_id_env": "SOHAR_ID",
        "client_secret_env": "SOHAR_SECRET",
        "webhook_secrets_env": ["SOHAR_WH_1", "SOHAR_WH_2"],
        "token_refresh_margin": 120,
        "timeout": 10,
        "tolerance": 60,
    }
    parsed = sohar.parse_settings("sohar-sandbox", data, ctx)
    assert ctx.problems == []
    assert parsed.name == "sohar-sandbox"
    assert parsed.base_url == "http://127.0.0.1:9000/sandbox/sohar"
    assert parsed.client_id == Secret("cid") and parsed.client_id.env == "SOHAR_ID"
    assert parsed.client_secret.reveal() == "csecret"
    assert parsed.webhook_secrets == [
        signing.parse_verify_key(WEBHOOK_SECRET),
        signing.parse_verify_key(OTHER_SECRET),
    ]
    assert (parsed.token_refresh_margin, parsed.timeout, parsed.tolerance) == (120.0, 10.0, 60)
    assert "csecret" not in repr(parsed) and WEBHOOK_SECRET not in repr(parsed)


def test_parse_settings_defaults() -> None:
    ctx = ParseContext(environ=ENVIRON)
    data = {
        "client_id_env": "SOHAR_ID",
        "client_secret_env": "SOHAR_SECRET",
        "webhook_secrets_env": "SOHAR_WH_1",
    }
    parsed = sohar.parse_settings("sohar", data, ctx)
    assert ctx.problems == []
    assert parsed.base_url == "https://api.soharhealth.com"
    assert len(parsed.webhook_secrets) == 1
    assert (parsed.token_refresh_margin, parsed.timeout, parsed.tolerance) == (60.0, 30.0, 300)


def test_parse_settings_reports_every_problem() -> None:
    environ = {**ENVIRON, "BAD_WH": "whsec_not-base64!!", "PLAIN_WH": "hunter2-secret"}
    ctx = ParseContext(environ=environ)
    data = {
        "kind": "sohar",
        "base_url": "ftp://sohar",
        "client_secret_env": "MISSING_VAR",
        "webhook_secrets_env": ["SOHAR_WH_1", "BAD_WH", "PLAIN_WH"],
        "token_refresh_margin": -1,
        "timeout": "fast",
        "tolerance": 1.5,
        "template": "x",
    }
    sohar.parse_settings("s", data, ctx)
    keys = sorted(problem.split(":")[0] for problem in ctx.problems)
    assert keys == [
        "providers.s.base_url",
        "providers.s.client_id_env",
        "providers.s.client_secret_env",
        "providers.s.template",
        "providers.s.timeout",
        "providers.s.token_refresh_margin",
        "providers.s.tolerance",
        "providers.s.webhook_secrets_env",
        "providers.s.webhook_secrets_env",
    ]
    text = "\n".join(ctx.problems)
    assert "BAD_WH" in text and "PLAIN_WH" in text
    assert "hunter2-secret" not in text and "not-base64" not in text


def test_parse_settings_requires_webhook_secrets() -> None:
    ctx = ParseContext(environ=ENVIRON)
    sohar.parse_settings("s", {"client_id_env": "SOHAR_ID", "client_secret_env": "SOHAR_SECRET"}, ctx)
    assert [p.split(":")[0] for p in ctx.problems] == ["providers.s.webhook_secrets_env"]
