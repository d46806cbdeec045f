from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import providers
from gateway.core.config_types import ParseContext, Secret
from gateway.domain import errors
from gateway.domain.model import RunSnapshot, RunStatus
from gateway.domain.ports import Provider, PushKind
from gateway.domain.streaming import StreamPolicy, StreamSource
from gateway.providers import inferencesh as inf

PAYLOADS = Path(__file__).parent.parent / "payloads" / "inferencesh"
BASE = "https://inf.test"
KEY = "inf_test_0123456789"
RUN_ID = "flowrun_8f3a2c1d"
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


class Clock:
    def __init__(self) -> None:
        self.current = T0
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.current

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.current += timedelta(seconds=seconds)


Handler = Callable[[httpx.Request], httpx.Response]


class FakeInf:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], Handler] = {}

    def route(self, method: str, path: str, body: Any = None, status: int = 200, **headers: str) -> None:
        media = "application/problem+json" if status >= 400 and isinstance(body, dict) and "type" in body else None
        extra = {"content-type": media} if media else {}
        self.routes[(method, path)] = lambda request: httpx.Response(status, json=body, headers={**extra, **headers})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return httpx.Response(401, json=payload("problem_unauthorized"))
        handler = self.routes.get((request.method, request.url.path))
        return handler(request) if handler else httpx.Response(404, json=payload("problem_not_found"))


def settings(**overrides: Any) -> inf.InferenceShSettings:
    return inf.InferenceShSettings(**{"name": "inferencesh", "base_url": BASE, "api_key": Secret(KEY), **overrides})


@pytest.fixture
def api() -> FakeInf:
    return FakeInf()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def http(api: FakeInf) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(api)) as client:
        yield client


def make(http: httpx.AsyncClient, clock: Clock, **overrides: Any) -> inf.InferenceShProvider:
    return inf.InferenceShProvider(settings(**overrides), http=http, clock=clock, sleep=clock.sleep)


@pytest.fixture
def provider(http: httpx.AsyncClient, clock: Clock) -> inf.InferenceShProvider:
    return make(http, clock)


# contract and settings


async def test_module_and_provider_fit_the_contracts(provider: inf.InferenceShProvider) -> None:
    module: providers.ProviderModule = inf
    assert providers.provider_module("inferencesh") is module
    port: Provider = provider
    streams: StreamSource = provider
    assert (port.capabilities.can_resume, port.capabilities.can_cancel) == (False, True)
    assert port.capabilities.push is PushKind.STREAM
    assert streams.stream_policy == StreamPolicy()
    assert provider.poll_interval == 30.0
    with pytest.raises(errors.UnsupportedOperation):
        await port.resume_run(RUN_ID, None, {})
    with pytest.raises(errors.NotFound):
        await port.parse_notification(b"{}", {}, T0)
    await port.aclose()


def test_settings_parse() -> None:
    ctx = ParseContext(environ={"INF": KEY})
    data = {"api_key_env": "INF", "stream_reconnects": 2, "stream_reconnect_delay": 0.5, "poll_interval": 0}
    parsed = inf.parse_settings("inf", data, ctx)
    assert ctx.problems == []
    assert parsed.api_key.reveal() == KEY and parsed.api_version == 2 and parsed.base_url == inf.DEFAULT_BASE_URL
    assert (parsed.stream_policy.reconnects, parsed.stream_policy.reconnect_delay) == (2, 0.5)
    assert inf.build(parsed, http=httpx.AsyncClient(), clock=Clock()).poll_interval is None
    ctx = ParseContext(environ={})
    inf.parse_settings("inf", {"api_version": "2", "stream": "yes", "max_rate_wait": 100, "x": 1}, ctx)
    assert len(ctx.problems) == 5, ctx.problems  # api_key_env missing too


def test_stream_can_be_switched_off(http: httpx.AsyncClient, clock: Clock) -> None:
    assert make(http, clock, stream=False).capabilities.push is PushKind.POLL


# requests


async def test_create_sends_flow_and_input_with_v2_headers(provider: inf.InferenceShProvider, api: FakeInf) -> None:
    api.route("POST", "/flowruns", payload("flowrun_created"))
    snapshot = await provider.create_run("flow_abc123", {"prompt": "A mountain landscape"}, idempotency_key="gw-1")
    (request,) = api.requests
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["X-API-Version"] == "2"
    assert "Idempotency-Key" not in request.headers
    assert json.loads(request.content) == {"flow": "flow_abc123", "input": {"prompt": "A mountain landscape"}}
    assert (snapshot.provider_run_id, snapshot.status, snapshot.provider_status) == (RUN_ID, RunStatus.CREATED, "1")


async def test_create_with_idempotency_header_and_without_an_id(
    api: FakeInf, http: httpx.AsyncClient, clock: Clock
) -> None:
    api.route("POST", "/flowruns", {"status": 1})
    provider = make(http, clock, idempotency_header="Idempotency-Key")
    with pytest.raises(errors.PermanentProviderError, match="without an id"):
        await provider.create_run("flow_abc123", {}, idempotency_key="gw-1")
    assert api.requests[0].headers["Idempotency-Key"] == "gw-1"


@pytest.mark.parametrize(
    ("name", "status", "provider_status"),
    [
        ("flowrun_created", RunStatus.CREATED, "1"),
        ("flowrun_running", RunStatus.IN_PROGRESS, "2"),
        ("flowrun_completed", RunStatus.COMPLETE, "3"),
        ("flowrun_failed", RunStatus.ERROR, "4"),
        ("flowrun_cancelled", RunStatus.CANCELLED, "5"),
    ],
)
async def test_numeric_statuses(
    provider: inf.InferenceShProvider, api: FakeInf, name: str, status: RunStatus, provider_status: str
) -> None:
    api.route("GET", f"/flowruns/{RUN_ID}", payload(name))
    snapshot = await provider.get_run(RUN_ID)
    assert (snapshot.status, snapshot.provider_status) == (status, provider_status)


@pytest.mark.parametrize(("value", "expected"), [(0, "0"), (9, "9"), ("3", "3"), ("done", ""), (True, ""), (None, "")])
async def test_unknown_statuses_never_crash(
    provider: inf.InferenceShProvider, api: FakeInf, value: Any, expected: str
) -> None:
    api.route("GET", f"/flowruns/{RUN_ID}", {"id": RUN_ID, "status": value})
    snapshot = await provider.get_run(RUN_ID)
    assert snapshot.provider_status == expected
    assert snapshot.status is (RunStatus.COMPLETE if value == "3" else RunStatus.UNKNOWN)


async def test_output_and_error(provider: inf.InferenceShProvider, api: FakeInf) -> None:
    api.route("GET", f"/flowruns/{RUN_ID}", payload("flowrun_completed"))
    assert (await provider.get_run(RUN_ID)).output == payload("flowrun_completed")["output"]
    api.route("GET", f"/flowruns/{RUN_ID}", {**payload("flowrun_completed"), "output": "plain text"})
    assert (await provider.get_run(RUN_ID)).output == {"value": "plain text"}
    api.route("GET", f"/flowruns/{RUN_ID}", payload("flowrun_failed"))
    failed = await provider.get_run(RUN_ID)
    assert (failed.output, failed.error) == (None, {"message": "node node_1 failed: out of memory"})


async def test_cancel_posts_and_ignores_the_body(provider: inf.InferenceShProvider, api: FakeInf) -> None:
    api.route("POST", f"/flowruns/{RUN_ID}/cancel", None, status=204)
    await provider.cancel_run(RUN_ID)
    (request,) = api.requests
    assert (request.method, request.url.path) == ("POST", f"/flowruns/{RUN_ID}/cancel")
    api.route("POST", f"/flowruns/{RUN_ID}/cancel", payload("problem_not_found"), status=404)
    with pytest.raises(errors.PermanentProviderError):
        await provider.cancel_run(RUN_ID)


async def test_ids_cannot_escape_the_path(provider: inf.InferenceShProvider, api: FakeInf) -> None:
    with pytest.raises(errors.PermanentProviderError):
        await provider.get_run("..")
    with pytest.raises(errors.PermanentProviderError):
        await provider.get_run("a/../../admin")  # quoted into one segment: the fake answers 404
    assert api.requests[0].url.raw_path == b"/flowruns/a%2F..%2F..%2Fadmin"


# v1 envelopes


async def test_v1_envelope_is_unwrapped(api: FakeInf, http: httpx.AsyncClient, clock: Clock) -> None:
    api.route("GET", f"/flowruns/{RUN_ID}", payload("v1_envelope_completed"))
    provider = make(http, clock, api_version=0)
    snapshot = await provider.get_run(RUN_ID)
    assert "X-API-Version" not in api.requests[0].headers
    assert (snapshot.status, snapshot.output) == (
        RunStatus.COMPLETE,
        payload("v1_envelope_completed")["data"]["output"],
    )


@pytest.mark.parametrize(
    ("name", "http_status", "kind", "code"),
    [
        ("v1_error_not_found", 404, errors.PermanentProviderError, "not_found"),
        ("v1_error_rate_limited", 429, errors.TransientProviderError, "rate_limited"),
    ],
)
async def test_v1_errors(
    provider: inf.InferenceShProvider,
    api: FakeInf,
    name: str,
    http_status: int,
    kind: type[errors.ProviderError],
    code: str,
) -> None:
    api.route("GET", f"/flowruns/{RUN_ID}", payload(name), status=http_status)
    with pytest.raises(kind, match=f"\\({code}\\)"):
        await provider.get_run(RUN_ID)
    api.route("GET", f"/flowruns/{RUN_ID}", payload(name), status=200)  # an envelope can fail inside a 200
    with pytest.raises(kind, match=f"\\({code}\\)") as caught:
        await provider.get_run(RUN_ID)
    assert caught.value.status_code == http_status


# RFC 9457 problems and 412


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("invalid_request", 400, errors.PermanentProviderError),
        ("unauthorized", 401, errors.PermanentProviderError),
        ("forbidden", 403, errors.PermanentProviderError),
        ("not_found", 404, errors.PermanentProviderError),
        ("rate_limited", 429, errors.TransientProviderError),
        ("internal_error", 500, errors.TransientProviderError),
    ],
)
async def test_problem_details(
    provider: inf.InferenceShProvider, api: FakeInf, code: str, status: int, kind: type[errors.ProviderError]
) -> None:
    problem = payload(f"problem_{code}")
    api.route("POST", "/flowruns", problem, status=status)
    with pytest.raises(kind) as caught:
        await provider.create_run("flow_abc123", {}, idempotency_key="gw-1")
    assert caught.value.status_code == status
    assert caught.value.message == f"POST /flowruns answered {status} ({code})"
    assert problem["detail"] not in caught.value.message


async def test_requirements_error_names_types_only(provider: inf.InferenceShProvider, api: FakeInf) -> None:
    api.route("POST", "/flowruns", payload("requirements_not_met"), status=412)
    with pytest.raises(errors.PermanentProviderError) as caught:
        await provider.create_run("flow_abc123", {}, idempotency_key="gw-1")
    assert caught.value.status_code == 412
    assert caught.value.message == "POST /flowruns answered 412: requirements not met (integration, secret)"
    api.route("POST", "/flowruns", {"satisfied": False}, status=412)
    with pytest.raises(errors.PermanentProviderError, match="unspecified"):
        await provider.create_run("flow_abc123", {}, idempotency_key="gw-1")


async def test_non_json_bodies(provider: inf.InferenceShProvider, api: FakeInf) -> None:
    api.routes[("GET", f"/flowruns/{RUN_ID}")] = lambda r: httpx.Response(502, text="<html>bad gateway</html>")
    with pytest.raises(errors.TransientProviderError, match=r"answered 502$"):
        await provider.get_run(RUN_ID)
    api.routes[("GET", f"/flowruns/{RUN_ID}")] = lambda r: httpx.Response(200, text="[1, 2]")
    with pytest.raises(errors.PermanentProviderError, match="not an object"):
        await provider.get_run(RUN_ID)


# rate limits


async def test_spent_budget_waits_for_the_reset(provider: inf.InferenceShProvider, api: FakeInf, clock: Clock) -> None:
    reset = str(int((T0 + timedelta(seconds=3)).timestamp()))
    api.route(
        "GET",
        f"/flowruns/{RUN_ID}",
        payload("flowrun_running"),
        **{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
    )
    await provider.get_run(RUN_ID)
    api.route("GET", f"/flowruns/{RUN_ID}", payload("flowrun_running"), **{"X-RateLimit-Remaining": "99"})
    await provider.get_run(RUN_ID)
    assert clock.slept == [3.0]
    await provider.get_run(RUN_ID)
    assert clock.slept == [3.0]  # the gate is open again


async def test_long_waits_reschedule_instead_of_failing(
    provider: inf.InferenceShProvider, api: FakeInf, clock: Clock
) -> None:
    api.route(
        "GET",
        f"/flowruns/{RUN_ID}",
        payload("flowrun_running"),
        **{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60"},
    )
    await provider.get_run(RUN_ID)
    with pytest.raises(errors.TransientProviderError) as caught:
        await provider.create_run("flow_abc123", {}, idempotency_key="gw-1")
    assert caught.value.retry_after == 60.0
    assert len(api.requests) == 1 and clock.slept == []


async def test_429_retry_after_closes_the_gate(provider: inf.InferenceShProvider, api: FakeInf, clock: Clock) -> None:
    api.route("GET", f"/flowruns/{RUN_ID}", payload("problem_rate_limited"), status=429, **{"Retry-After": "2"})
    with pytest.raises(errors.TransientProviderError) as caught:
        await provider.get_run(RUN_ID)
    assert caught.value.retry_after == 2.0
    api.route("GET", f"/flowruns/{RUN_ID}", payload("flowrun_running"))
    await provider.get_run(RUN_ID)
    assert clock.slept == [2.0]


# stream


def sse_response(*chunks: bytes, status: int = 200, fail: BaseException | None = None) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk
        if fail is not None:
            raise fail

    return httpx.Response(status, headers={"content-type": "text/event-stream"}, content=body())


async def collect(provider: inf.InferenceShProvider) -> list[RunSnapshot]:
    return [snapshot async for snapshot in provider.stream_run(RUN_ID)]


async def test_stream_full_and_partial_messages(provider: inf.InferenceShProvider, api: FakeInf) -> None:
    transcript = (PAYLOADS / "stream_run.txt").read_bytes()
    chunks = [transcript[i : i + 7] for i in range(0, len(transcript), 7)]  # split anywhere, even inside UTF-8
    api.routes[("GET", f"/flowruns/{RUN_ID}/stream")] = lambda r: sse_response(*chunks)
    snapshots = await collect(provider)
    assert [s.status for s in snapshots] == [
        RunStatus.CREATED,
        RunStatus.IN_PROGRESS,
        RunStatus.IN_PROGRESS,
        RunStatus.COMPLETE,
    ]
    assert snapshots[2].output == {"partial": True}
    assert snapshots[-1].output == {"image": "https://cdn.inference.sh/outputs/8f3a2c1d.png", "width": 1024}
    (request,) = api.requests
    assert request.headers["Accept"] == "text/event-stream"
    assert request.headers["X-API-Version"] == "2"


async def test_stream_drop_is_transient(provider: inf.InferenceShProvider, api: FakeInf) -> None:
    first = b'data: {"id":"flowrun_8f3a2c1d","status":2}\n\n'
    api.routes[("GET", f"/flowruns/{RUN_ID}/stream")] = lambda r: sse_response(first, fail=httpx.ReadError("reset"))
    seen: list[RunSnapshot] = []
    with pytest.raises(errors.TransientProviderError, match="dropped"):
        async for snapshot in provider.stream_run(RUN_ID):
            seen.append(snapshot)
    assert [s.status for s in seen] == [RunStatus.IN_PROGRESS]


@pytest.mark.parametrize(
    ("status", "kind"),
    [(403, errors.PermanentProviderError), (404, errors.PermanentProviderError), (503, errors.TransientProviderError)],
)
async def test_stream_refused(
    provider: inf.InferenceShProvider, api: FakeInf, status: int, kind: type[errors.ProviderError]
) -> None:
    api.route("GET", f"/flowruns/{RUN_ID}/stream", payload("problem_forbidden"), status=status)
    with pytest.raises(kind):
        await collect(provider)


async def test_stream_connect_failure_is_transient(clock: Clock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        with pytest.raises(errors.TransientProviderError, match="ConnectError"):
            await collect(make(http, clock))


async def test_oversized_stream_events_are_a_drop(provider: inf.InferenceShProvider, api: FakeInf) -> None:
    huge = b"data: " + b"x" * (5 * 1024 * 1024)
    api.routes[("GET", f"/flowruns/{RUN_ID}/stream")] = lambda r: sse_response(huge)
    with pytest.raises(errors.TransientProviderError):
        await collect(provider)
