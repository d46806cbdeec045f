from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway import providers
from gateway.core import jws
from gateway.core.config_types import ParseContext, Secret
from gateway.domain import errors
from gateway.domain.model import RunStatus
from gateway.domain.ports import Provider, PushKind
from gateway.providers import transactionlink as tl

PAYLOADS = Path(__file__).parent.parent / "payloads" / "transactionlink"
BASE = "https://tl.test"
ORG_TOKEN = "tot_0123456789abcdef"
EXEC_ID = "3c9e1f7a-5b2d-4e8c-a6f0-9d1b3e5c7a20"
LEGACY_ID = "7f9b1d3e-5a7c-4e9b-b1d3-7e9b1d3f5a98"
DEFINITION = "d4f6a8c0-2e4b-4d6f-8a0c-2e4f6a8c0e21"
KID = "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = PRIVATE_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def raw(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes().strip()


class Clock:
    def __init__(self) -> None:
        self.current = T0

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


Handler = Callable[[httpx.Request], httpx.Response]


class FakeTL:
    """TransactionLink over MockTransport: the org token or issued legacy tokens, recorded payloads per route."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], Handler] = {}
        self.valid: set[str] = {ORG_TOKEN}
        self.issued = 0
        self.refuse_refresh = False
        self.keys: dict[str, bytes] = {KID: PEM}

    def route(self, method: str, path: str, body: Any = None, status: int = 200, **headers: str) -> None:
        self.routes[(method, path)] = lambda request: httpx.Response(status, json=body, headers=headers)

    def _issue(self) -> httpx.Response:
        self.issued += 1
        token = f"access-{self.issued}"
        self.valid.add(f"Bearer {token}")
        return httpx.Response(
            200, json={**payload("authorize"), "accessToken": token, "refreshToken": f"r{self.issued}"}
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/auth/authorize":
            return self._issue()
        if path == "/auth/refresh":
            if self.refuse_refresh:
                return httpx.Response(401, json=payload("error_unauthorized"))
            return self._issue()
        if path.startswith("/auth/webhooks/key/"):
            key = self.keys.get(path.rsplit("/", 1)[1])
            return httpx.Response(200, content=key) if key else httpx.Response(404)
        if request.headers.get("Authorization") not in self.valid:
            return httpx.Response(401, json=payload("error_unauthorized"))
        handler = self.routes.get((request.method, path))
        return handler(request) if handler else httpx.Response(404, json={"message": "Not Found"})

    def calls(self, path_prefix: str = "/") -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.startswith(path_prefix) and not r.url.path.startswith("/auth")]


def settings(**overrides: Any) -> tl.TransactionLinkSettings:
    values: dict[str, Any] = {"name": "transactionlink", "base_url": BASE, "token": Secret(ORG_TOKEN, env="TL")}
    values["statuses"] = {k: RunStatus[v] for k, v in tl.DEFAULT_EXTRA_STATUSES.items()}
    return tl.TransactionLinkSettings(**{**values, **overrides})


def legacy(**overrides: Any) -> tl.TransactionLinkSettings:
    return settings(auth="legacy", token=None, key=Secret("key-1"), secret=Secret("secret-1"), **overrides)


@pytest.fixture
def api() -> FakeTL:
    return FakeTL()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def http(api: FakeTL) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(api)) as client:
        yield client


@pytest.fixture
def provider(http: httpx.AsyncClient, clock: Clock) -> tl.TransactionLinkProvider:
    return tl.build(settings(), http=http, clock=clock)


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


# registry, shape, settings


async def test_module_and_provider_fit_the_plug_in_contract(provider: tl.TransactionLinkProvider) -> None:
    module: providers.ProviderModule = tl
    assert providers.provider_module("transactionlink") is module
    port: Provider = provider
    assert (port.capabilities.can_resume, port.capabilities.can_cancel) == (False, False)
    assert port.capabilities.push is PushKind.WEBHOOK
    assert provider.poll_interval == 30.0
    with pytest.raises(errors.UnsupportedOperation):
        await port.cancel_run(EXEC_ID)
    with pytest.raises(errors.UnsupportedOperation):
        await port.resume_run(EXEC_ID, None, {})
    await port.aclose()


def test_settings_defaults_and_overrides() -> None:
    ctx = ParseContext(environ={"TL_TOKEN": ORG_TOKEN})
    parsed = tl.parse_settings("tl", {"kind": "transactionlink", "token_env": "TL_TOKEN"}, ctx)
    assert ctx.problems == []
    assert (parsed.auth, parsed.api, parsed.api_version, parsed.base_url) == (
        "token",
        "execution",
        2,
        tl.DEFAULT_BASE_URL,
    )
    assert parsed.statuses["FAILED"] is RunStatus.ERROR and parsed.statuses["EXPIRED"] is RunStatus.EXPIRED
    assert parsed.token is not None and parsed.token.reveal() == ORG_TOKEN

    data = {"auth": "legacy", "key_env": "K", "secret_env": "S", "api": "cases", "statuses": {"timed_out": "EXPIRED"}}
    ctx = ParseContext(environ={"K": "k", "S": "s"})
    parsed = tl.parse_settings("tl", data, ctx)
    assert ctx.problems == []
    assert parsed.statuses == {"TIMED_OUT": RunStatus.EXPIRED}
    assert parsed.token is None and parsed.key is not None


def test_settings_report_every_problem() -> None:
    ctx = ParseContext(environ={})
    data = {"auth": "oauth", "api": "v9", "statuses": {"X": "DONE"}, "jws_payload": "raw", "colour": 1}
    tl.parse_settings("tl", data, ctx)
    assert len(ctx.problems) == 6, ctx.problems
    ctx = ParseContext(environ={})
    tl.parse_settings("tl", {"auth": "legacy"}, ctx)
    assert [p.split(":")[0] for p in ctx.problems] == ["providers.tl.key_env", "providers.tl.secret_env"]


# execution API with the organisation token


async def test_start_sends_the_execution_body_with_a_raw_org_token(
    provider: tl.TransactionLinkProvider, api: FakeTL
) -> None:
    api.route("POST", "/workflows", payload("execution_background"))
    snapshot = await provider.create_run(DEFINITION, {"patientId": "P-1001"}, idempotency_key="gw-1")
    (request,) = api.requests
    assert request.headers["Authorization"] == ORG_TOKEN
    assert request.headers["Accept"] == "application/json;version=2"
    assert request.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert body_of(request) == {
        "workflowDefinitionId": DEFINITION,
        "locale": "en",
        "parameters": {"patientId": "P-1001"},
    }
    assert (snapshot.provider_run_id, snapshot.status, snapshot.provider_status) == (
        EXEC_ID,
        RunStatus.IN_PROGRESS,
        "RUNNING",
    )


async def test_start_with_expiry_record_id_and_plain_accept(api: FakeTL, http: httpx.AsyncClient, clock: Clock) -> None:
    api.route("POST", "/workflows", payload("execution_interactive"))
    provider = tl.build(
        settings(expires_in=3600, record_id_key="recordId", api_version=0, locale="pl"), http=http, clock=clock
    )
    snapshot = await provider.create_run(DEFINITION, {"recordId": "rec-1", "a": 1}, idempotency_key="gw-1")
    (request,) = api.requests
    assert request.headers["Accept"] == "application/json"
    assert body_of(request) == {
        "workflowDefinitionId": DEFINITION,
        "locale": "pl",
        "recordId": "rec-1",
        "parameters": {"a": 1},
        "expiresAt": "2026-11-22T10:00:00Z",
    }
    assert snapshot.status is RunStatus.IN_PROGRESS


async def test_start_without_an_id_is_permanent(provider: tl.TransactionLinkProvider, api: FakeTL) -> None:
    api.route("POST", "/workflows", {"status": "RUNNING"})
    with pytest.raises(errors.PermanentProviderError):
        await provider.create_run(DEFINITION, {}, idempotency_key="gw-1")


async def test_org_token_401_is_not_retried(provider: tl.TransactionLinkProvider, api: FakeTL) -> None:
    api.valid.clear()
    with pytest.raises(errors.PermanentProviderError) as caught:
        await provider.get_run(EXEC_ID)
    assert caught.value.status_code == 401
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [
        (400, {}, errors.PermanentProviderError, None),
        (403, {}, errors.PermanentProviderError, None),
        (415, {}, errors.PermanentProviderError, None),
        (429, {"Retry-After": "7"}, errors.TransientProviderError, 7.0),
        (500, {}, errors.TransientProviderError, None),
        (502, {}, errors.TransientProviderError, None),
    ],
)
async def test_error_statuses_are_classified(
    provider: tl.TransactionLinkProvider,
    api: FakeTL,
    status: int,
    headers: dict[str, str],
    kind: type[errors.ProviderError],
    retry_after: float | None,
) -> None:
    api.route("POST", "/workflows", payload("error_bad_request"), status=status, **headers)
    with pytest.raises(kind) as caught:
        await provider.create_run(DEFINITION, {}, idempotency_key="gw-1")
    assert caught.value.status_code == status
    assert caught.value.retry_after == retry_after
    assert "workflowDefinitionId" not in caught.value.message  # bodies never reach messages


# status and result


async def test_running_maps_to_in_progress(provider: tl.TransactionLinkProvider, api: FakeTL) -> None:
    api.route("GET", f"/workflows/{EXEC_ID}", payload("execution_background"))
    snapshot = await provider.get_run(EXEC_ID)
    assert (snapshot.status, snapshot.output) == (RunStatus.IN_PROGRESS, None)
    assert [r.url.path for r in api.requests] == [f"/workflows/{EXEC_ID}"]


async def test_completed_fetches_the_result(provider: tl.TransactionLinkProvider, api: FakeTL) -> None:
    api.route("GET", f"/workflows/{EXEC_ID}", payload("execution_completed"))
    api.route("GET", f"/workflows/{EXEC_ID}/result", payload("workflow_result"))
    snapshot = await provider.get_run(EXEC_ID)
    assert snapshot.status is RunStatus.COMPLETE
    assert snapshot.output == payload("workflow_result")


async def test_missing_result_endpoint_falls_back_to_the_execution(
    provider: tl.TransactionLinkProvider, api: FakeTL
) -> None:
    api.route("GET", f"/workflows/{EXEC_ID}", payload("execution_completed"))
    snapshot = await provider.get_run(EXEC_ID)  # /result answers 404
    assert snapshot.status is RunStatus.COMPLETE
    assert snapshot.output == payload("execution_completed")


async def test_result_can_be_skipped_and_read_from_the_execution(
    api: FakeTL, http: httpx.AsyncClient, clock: Clock
) -> None:
    api.route("GET", f"/workflows/{EXEC_ID}", {**payload("execution_completed"), "result": {"score": 3}})
    provider = tl.build(settings(fetch_result=False), http=http, clock=clock)
    snapshot = await provider.get_run(EXEC_ID)
    assert snapshot.output == {"score": 3}
    assert len(api.requests) == 1


async def test_result_errors_other_than_missing_propagate(provider: tl.TransactionLinkProvider, api: FakeTL) -> None:
    api.route("GET", f"/workflows/{EXEC_ID}", payload("execution_completed"))
    api.route("GET", f"/workflows/{EXEC_ID}/result", {}, status=503)
    with pytest.raises(errors.TransientProviderError):
        await provider.get_run(EXEC_ID)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("FAILED", RunStatus.ERROR),
        ("EXPIRED", RunStatus.EXPIRED),
        ("AWAITING", RunStatus.IN_PROGRESS),
        ("completed", RunStatus.COMPLETE),
        ("SOMETHING_NEW", RunStatus.UNKNOWN),
        (3, RunStatus.UNKNOWN),
    ],
)
async def test_status_values(
    provider: tl.TransactionLinkProvider, api: FakeTL, value: Any, expected: RunStatus
) -> None:
    api.route("GET", f"/workflows/{EXEC_ID}", {**payload("execution_failed"), "status": value})
    api.route("GET", f"/workflows/{EXEC_ID}/result", {"ok": True})
    snapshot = await provider.get_run(EXEC_ID)
    assert snapshot.status is expected


async def test_failure_keeps_the_provider_error(provider: tl.TransactionLinkProvider, api: FakeTL) -> None:
    api.route("GET", f"/workflows/{EXEC_ID}", payload("execution_failed"))
    snapshot = await provider.get_run(EXEC_ID)
    assert snapshot.error == {"provider_status": "FAILED", "error": {"code": "TASK_FAILED", "task": "document-scan"}}


async def test_configured_statuses_replace_the_guesses(api: FakeTL, http: httpx.AsyncClient, clock: Clock) -> None:
    api.route("GET", f"/workflows/{EXEC_ID}", {**payload("execution_failed"), "status": "REJECTED"})
    provider = tl.build(settings(statuses={"REJECTED": RunStatus.ERROR}), http=http, clock=clock)
    assert (await provider.get_run(EXEC_ID)).status is RunStatus.ERROR
    api.route("GET", f"/workflows/{EXEC_ID}", payload("execution_failed"))
    assert (await provider.get_run(EXEC_ID)).status is RunStatus.UNKNOWN  # FAILED no longer mapped


# legacy key/secret auth


async def test_legacy_authorize_then_bearer(api: FakeTL, http: httpx.AsyncClient, clock: Clock) -> None:
    api.route("GET", f"/workflows/{EXEC_ID}", payload("execution_background"))
    provider = tl.build(legacy(), http=http, clock=clock)
    await provider.get_run(EXEC_ID)
    authorize, call = api.requests
    assert authorize.url.path == "/auth/authorize"
    assert body_of(authorize) == {"key": "key-1", "secret": "secret-1"}
    assert "Authorization" not in authorize.headers
    assert call.headers["Authorization"] == "Bearer access-1"


async def test_legacy_refreshes_before_expiry(api: FakeTL, http: httpx.AsyncClient, clock: Clock) -> None:
    api.route("GET", f"/workflows/{EXEC_ID}", payload("execution_background"))
    provider = tl.build(legacy(), http=http, clock=clock)
    await provider.get_run(EXEC_ID)
    clock.advance(3600 - 60 - 1)
    await provider.get_run(EXEC_ID)
    clock.advance(1)
    await provider.get_run(EXEC_ID)
    refresh = [r for r in api.requests if r.url.path == "/auth/refresh"]
    assert [body_of(r) for r in refresh] == [{"refreshToken": "r1"}]
    assert [r.headers["Authorization"] for r in api.calls()] == [
        "Bearer access-1",
        "Bearer access-1",
        "Bearer access-2",
    ]


async def test_legacy_authorizes_again_when_the_refresh_is_refused(
    api: FakeTL, http: httpx.AsyncClient, clock: Clock
) -> None:
    api.route("GET", f"/workflows/{EXEC_ID}", payload("execution_background"))
    provider = tl.build(legacy(), http=http, clock=clock)
    await provider.get_run(EXEC_ID)
    api.refuse_refresh = True
    clock.advance(3600)
    await provider.get_run(EXEC_ID)
    assert [r.url.path for r in api.requests if r.url.path.startswith("/auth")] == [
        "/auth/authorize",
        "/auth/refresh",
        "/auth/authorize",
    ]
    assert api.calls()[-1].headers["Authorization"] == "Bearer access-2"


async def test_legacy_401_refreshes_and_retries_once(api: FakeTL, http: httpx.AsyncClient, clock: Clock) -> None:
    api.route("GET", f"/workflows/{EXEC_ID}", payload("execution_background"))
    provider = tl.build(legacy(), http=http, clock=clock)
    await provider.get_run(EXEC_ID)
    api.valid.clear()  # access-1 revoked: the 401 renews it and the call is repeated
    assert (await provider.get_run(EXEC_ID)).status is RunStatus.IN_PROGRESS
    assert [r.headers["Authorization"] for r in api.calls()] == [
        "Bearer access-1",
        "Bearer access-1",
        "Bearer access-2",
    ]
    api.route("GET", f"/workflows/{EXEC_ID}", payload("error_unauthorized"), status=401)
    with pytest.raises(errors.PermanentProviderError) as caught:
        await provider.get_run(EXEC_ID)  # refused again after the renewal: give up
    assert caught.value.status_code == 401
    assert len(api.calls()) == 5


# legacy case-based flow


async def test_case_flow_creates_case_parameters_and_run(api: FakeTL, http: httpx.AsyncClient, clock: Clock) -> None:
    api.route("POST", "/cases", payload("case_created"), status=201)
    api.route("POST", "/parameters", payload("parameters_created"), status=201)
    api.route("POST", "/workflows/run", payload("workflow_run"))
    provider = tl.build(settings(api="cases"), http=http, clock=clock)
    snapshot = await provider.create_run(
        DEFINITION, {"firstName": "Ada", "email": "ada@example.test", "patientId": "P-1"}, idempotency_key="gw-1"
    )
    cases, parameters, run = api.requests
    assert (cases.url.path, body_of(cases)) == ("/cases", {"firstName": "Ada", "email": "ada@example.test"})
    assert (parameters.url.path, body_of(parameters)) == ("/parameters", {"parameters": {"patientId": "P-1"}})
    assert body_of(run) == {
        "caseId": payload("case_created")["caseId"],
        "workflowDefinitionId": DEFINITION,
        "parametersId": payload("parameters_created")["parametersId"],
    }
    assert (snapshot.provider_run_id, snapshot.status) == (LEGACY_ID, RunStatus.IN_PROGRESS)


async def test_case_flow_skips_parameters_and_can_finish_at_once(
    api: FakeTL, http: httpx.AsyncClient, clock: Clock
) -> None:
    api.route("POST", "/cases", payload("case_created"), status=201)
    api.route("POST", "/workflows/run", payload("workflow_status_completed"))
    api.route("GET", f"/workflows/{LEGACY_ID}/result", payload("workflow_result"))
    provider = tl.build(settings(api="cases"), http=http, clock=clock)
    snapshot = await provider.create_run(DEFINITION, {"lastName": "Lovelace"}, idempotency_key="gw-1")
    assert [r.url.path for r in api.requests] == ["/cases", "/workflows/run", f"/workflows/{LEGACY_ID}/result"]
    assert "parametersId" not in body_of(api.requests[1])
    assert (snapshot.status, snapshot.output) == (RunStatus.COMPLETE, payload("workflow_result"))


async def test_case_flow_flat_parameters_body(api: FakeTL, http: httpx.AsyncClient, clock: Clock) -> None:
    api.route("POST", "/cases", payload("case_created"), status=201)
    api.route("POST", "/parameters", payload("parameters_created"))
    api.route("POST", "/workflows/run", payload("workflow_run"))
    provider = tl.build(settings(api="cases", parameters_key=""), http=http, clock=clock)
    await provider.create_run(DEFINITION, {"x": 1}, idempotency_key="gw-1")
    assert body_of(api.requests[1]) == {"x": 1}


async def test_case_flow_needs_the_ids(api: FakeTL, http: httpx.AsyncClient, clock: Clock) -> None:
    provider = tl.build(settings(api="cases"), http=http, clock=clock)
    api.route("POST", "/cases", {"partyId": "p"}, status=201)
    with pytest.raises(errors.PermanentProviderError, match="caseId"):
        await provider.create_run(DEFINITION, {"x": 1}, idempotency_key="gw-1")
    api.route("POST", "/cases", payload("case_created"), status=201)
    api.route("POST", "/parameters", {})
    with pytest.raises(errors.PermanentProviderError, match="parametersId"):
        await provider.create_run(DEFINITION, {"x": 1}, idempotency_key="gw-1")


# Notifications: detached JWS


def headers_for(body: bytes, *, key: rsa.RSAPrivateKey = PRIVATE_KEY, kid: str = KID, **kw: Any) -> dict[str, str]:
    return {"JWS-SIGNATURE": jws.sign(key, kid, body, **kw), "Content-Type": "application/json"}


async def test_good_signature_gives_a_notification(provider: tl.TransactionLinkProvider, api: FakeTL) -> None:
    body = raw("webhook_completed")
    note = await provider.parse_notification(body, headers_for(body), T0)
    assert (note.provider, note.provider_run_id, note.status, note.event_type) == (
        "transactionlink",
        EXEC_ID,
        "COMPLETED",
        "WORKFLOW_COMPLETED",
    )
    assert note.message_id == "sha256:" + hashlib.sha256(body).hexdigest()
    (key_request,) = api.requests
    assert key_request.url.path == f"/auth/webhooks/key/{KID}"
    assert key_request.url.params["pem"] == "true"
    assert key_request.headers["Authorization"] == ORG_TOKEN


async def test_keys_are_cached_by_kid(provider: tl.TransactionLinkProvider, api: FakeTL) -> None:
    for name in ("webhook_completed", "webhook_awaiting"):
        body = raw(name)
        note = await provider.parse_notification(body, {k.lower(): v for k, v in headers_for(body).items()}, T0)
        assert note.provider_run_id == EXEC_ID
    assert note.status == "AWAITING" and note.event_type == "workflow.awaiting"  # nested fields
    assert len(api.requests) == 1


async def test_tampered_body_is_refused(provider: tl.TransactionLinkProvider) -> None:
    body = raw("webhook_completed")
    headers = headers_for(body)
    with pytest.raises(errors.SignatureError) as caught:
        await provider.parse_notification(body.replace(b"COMPLETED", b"FAILED"), headers, T0)
    assert not caught.value.malformed


async def test_tampered_signature_and_other_keys_are_refused(provider: tl.TransactionLinkProvider) -> None:
    body = raw("webhook_completed")
    header, _, signature = jws.sign(PRIVATE_KEY, KID, body).split(".")
    flipped = bytearray(jws.b64url_decode(signature))
    flipped[10] ^= 1
    with pytest.raises(errors.SignatureError):
        await provider.parse_notification(body, {"JWS-SIGNATURE": f"{header}..{jws.b64url_encode(bytes(flipped))}"}, T0)
    with pytest.raises(errors.SignatureError):
        await provider.parse_notification(body, headers_for(body, key=OTHER_KEY), T0)


async def test_unknown_kid_is_refused_and_remembered(provider: tl.TransactionLinkProvider, api: FakeTL) -> None:
    body = raw("webhook_completed")
    headers = headers_for(body, kid="00000000-dead-beef-0000-000000000000")
    for _ in range(3):
        with pytest.raises(errors.SignatureError, match="unknown"):
            await provider.parse_notification(body, headers, T0)
    assert len(api.requests) == 1


async def test_key_endpoint_failure_is_transient(provider: tl.TransactionLinkProvider, api: FakeTL) -> None:
    api.keys = {}
    api.routes.clear()

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    body = raw("webhook_completed")
    async with httpx.AsyncClient(transport=httpx.MockTransport(broken)) as http:
        failing = tl.build(settings(), http=http, clock=Clock())
        with pytest.raises(errors.TransientProviderError):
            await failing.parse_notification(body, headers_for(body), T0)


def forged(header: dict[str, Any], body: bytes, key: bytes = b"") -> str:
    header_b64 = jws.b64url_encode(json.dumps(header).encode())
    signing_input = f"{header_b64}.{jws.b64url_encode(body)}".encode()
    signature = hmac.new(key, signing_input, hashlib.sha256).digest() if key else b""
    return f"{header_b64}..{jws.b64url_encode(signature)}"


@pytest.mark.parametrize("alg", ["none", "HS256", "RS512", "PS256", "ES256", None])
async def test_wrong_algorithms_are_refused_before_any_key_fetch(
    provider: tl.TransactionLinkProvider, api: FakeTL, alg: str | None
) -> None:
    body = raw("webhook_completed")
    value = forged({"alg": alg, "kid": KID, "typ": "JWT"}, body, key=PEM if alg == "HS256" else b"")
    with pytest.raises(errors.SignatureError, match="algorithm"):
        await provider.parse_notification(body, {"JWS-SIGNATURE": value}, T0)
    assert api.requests == []


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!..sig",
        jws.b64url_encode(b"[1]") + "..AAAA",
        jws.b64url_encode(b'{"alg":"RS256"}') + "..AAAA",
        "x" * 20000,
    ],
)
async def test_malformed_headers_are_400_class(provider: tl.TransactionLinkProvider, value: str | None) -> None:
    headers = {} if value is None else {"JWS-SIGNATURE": value}
    with pytest.raises(errors.SignatureError) as caught:
        await provider.parse_notification(b"{}", headers, T0)
    assert caught.value.malformed


async def test_unencoded_variant_is_configurable(api: FakeTL, http: httpx.AsyncClient, clock: Clock) -> None:
    body = raw("webhook_completed")
    declared = headers_for(body, unencoded=True)
    strict = tl.build(settings(), http=http, clock=clock)
    with pytest.raises(errors.SignatureError, match="unencoded"):
        await strict.parse_notification(body, declared, T0)
    for mode in (jws.PayloadMode.UNENCODED, jws.PayloadMode.EITHER):
        lenient = tl.build(settings(jws_payload=mode), http=http, clock=clock)
        assert (await lenient.parse_notification(body, declared, T0)).provider_run_id == EXEC_ID
    either = tl.build(settings(jws_payload=jws.PayloadMode.EITHER), http=http, clock=clock)
    assert (await either.parse_notification(body, headers_for(body), T0)).status == "COMPLETED"
    only_raw = tl.build(settings(jws_payload=jws.PayloadMode.UNENCODED), http=http, clock=clock)
    with pytest.raises(errors.SignatureError):
        await only_raw.parse_notification(body, headers_for(body), T0)


async def test_attached_payload_must_be_the_body(provider: tl.TransactionLinkProvider) -> None:
    body = raw("webhook_completed")
    header, _, signature = jws.sign(PRIVATE_KEY, KID, body).split(".")
    attached = f"{header}.{jws.b64url_encode(body)}.{signature}"
    assert (await provider.parse_notification(body, {"JWS-SIGNATURE": attached}, T0)).status == "COMPLETED"
    other = f"{header}.{jws.b64url_encode(b'{}')}.{signature}"
    with pytest.raises(errors.SignatureError, match="payload"):
        await provider.parse_notification(body, {"JWS-SIGNATURE": other}, T0)


async def test_bare_base64_keys_and_no_key_auth(api: FakeTL, http: httpx.AsyncClient, clock: Clock) -> None:
    der = PRIVATE_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    api.keys[KID] = base64.b64encode(der)
    provider = tl.build(settings(key_auth=False), http=http, clock=clock)
    body = raw("webhook_completed")
    assert (await provider.parse_notification(body, headers_for(body), T0)).provider_run_id == EXEC_ID
    assert "Authorization" not in api.requests[0].headers


async def test_payload_problems_after_a_good_signature(provider: tl.TransactionLinkProvider) -> None:
    for body, message in ((b"not json", "not JSON"), (b"[1]", "object"), (b'{"status": "COMPLETED"}', "workflow id")):
        with pytest.raises(errors.BadRequest, match=message):
            await provider.parse_notification(body, headers_for(body), T0)


async def test_message_id_header_and_custom_fields(api: FakeTL, http: httpx.AsyncClient, clock: Clock) -> None:
    provider = tl.build(
        settings(webhook_message_id_header="X-Delivery-Id", webhook_run_id_fields=("data.executionId",)),
        http=http,
        clock=clock,
    )
    body = b'{"data": {"executionId": "ex-9"}, "status": "RUNNING"}'
    note = await provider.parse_notification(body, {**headers_for(body), "x-delivery-id": "d-1"}, T0)
    assert (note.message_id, note.provider_run_id, note.status) == ("d-1", "ex-9", "RUNNING")
