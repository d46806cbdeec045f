"""The Reminix adapter against recorded payloads over httpx.MockTransport (PROVIDERS.md §4, seed 004)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import providers
from gateway.core.config_types import ParseContext
from gateway.domain import errors
from gateway.domain.model import PendingInput, RunStatus
from gateway.domain.ports import Provider, PushKind
from gateway.providers import reminix

PAYLOADS = Path(__file__).parent.parent / "payloads" / "reminix"
BASE = "https://reminix.test"
KEY = "reminix_sk_test_0123456789"
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


class FakeClock:
    def __init__(self) -> None:
        self.current = T0

    def now(self) -> datetime:
        return self.current


Handler = Callable[[httpx.Request], httpx.Response]


class FakeReminix:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], Handler] = {}

    def route(self, method: str, path: str, body: Any = None, status: int = 200, **headers: str) -> None:
        self.routes[(method, path)] = lambda request: httpx.Response(status, json=body, headers=headers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return httpx.Response(401, json=payload("error_code_shape"))
        handler = self.routes.get((request.method, request.url.path))
        return handler(request) if handler else httpx.Response(404, json={"error": "Not found"})

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def settings(**data: Any) -> reminix.ReminixSettings:
    ctx = ParseContext(environ={"REMINIX_KEY": KEY, "REMINIX_PAT": "reminix_pat_abc"})
    parsed = reminix.parse_settings("reminix", {"base_url": BASE, "api_key_env": "REMINIX_KEY", **data}, ctx)
    assert ctx.problems == []
    return parsed


@pytest.fixture
def fake() -> FakeReminix:
    return FakeReminix()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def adapter(fake: FakeReminix, clock: FakeClock) -> AsyncIterator[reminix.ReminixProvider]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        yield reminix.build(settings(), http=http, clock=clock)


def test_registered_and_satisfies_the_protocol(adapter: reminix.ReminixProvider) -> None:
    assert providers.provider_module("reminix") is reminix
    provider: Provider = adapter
    assert provider.capabilities.as_dict() == {"can_resume": True, "can_cancel": True, "push": PushKind.POLL.value}


def test_settings_problems() -> None:
    ctx = ParseContext(environ={"PAT": "reminix_pat_abc", "BAD": "sk_live_other"})
    reminix.parse_settings("r", {"api_key_env": "PAT", "resume_body": "json", "surprise": 1}, ctx)
    reminix.parse_settings("s", {"api_key_env": "BAD"}, ctx)
    assert ctx.problems == [
        "providers.r.surprise: is not a known setting",
        "providers.r.project: is required with a personal access token (reminix_pat_...)",
        "providers.r.resume_body: must be one of resume, input",
        "providers.s.api_key_env: must hold a Reminix key (reminix_sk_... or reminix_pat_...)",
    ]


async def test_start_shape_a_paused(adapter: reminix.ReminixProvider, fake: FakeReminix) -> None:
    fake.route("POST", "/v1/agents/lead-router/workflow", payload("start_paused_api"))
    snap = await adapter.create_run("lead-router", {"leadId": "lead-123"}, idempotency_key="gw-1")
    sent = fake.requests[-1]
    assert sent.headers["Idempotency-Key"] == "gw-1"
    assert "X-Project" not in sent.headers
    assert fake.body() == {"input": {"task": "Run the lead-router workflow", "state": {"leadId": "lead-123"}}}
    assert snap.provider_run_id == "wfr_abc123"
    assert (snap.status, snap.provider_status) == (RunStatus.PENDING, "paused")
    assert snap.pending == PendingInput(
        key="approval",
        kind="approval",
        message="Route to enterprise sales team?",
        options=["approve", "reject"],
        assignee="sales-ops",
    )
    assert snap.output == {"result": None, "steps": payload("start_paused_api")["state"]["steps"]}


async def test_start_shape_b_paused_with_a_task_input(adapter: reminix.ReminixProvider, fake: FakeReminix) -> None:
    fake.route("POST", "/v1/agents/lead-router/workflow", payload("start_paused_concepts"))
    flow_input = {"task": "Route this lead", "state": {"leadId": "lead-123"}}
    snap = await adapter.create_run("lead-router", flow_input, idempotency_key="gw-2")
    assert fake.body() == {"input": flow_input}
    assert snap.provider_run_id == "wfr_abc123"
    assert snap.status == RunStatus.PENDING
    assert snap.pending is not None
    assert (snap.pending.key, snap.pending.kind) == ("approval", "confirmation")
    assert snap.pending.options == ["approve", "reject", "escalate"]


async def test_start_completed_and_running(adapter: reminix.ReminixProvider, fake: FakeReminix) -> None:
    fake.route("POST", "/v1/agents/done/workflow", payload("start_completed_api"))
    fake.route("POST", "/v1/agents/slow/workflow", payload("start_running_api"))
    done = await adapter.create_run("done", {}, idempotency_key="k1")
    assert (done.status, done.output) == (
        RunStatus.COMPLETE,
        {
            "result": {"team": "smb-sales"},
            "steps": [{"name": "classify", "status": "completed", "output": {"category": "smb"}}],
        },
    )
    slow = await adapter.create_run("slow", {}, idempotency_key="k2")
    assert (slow.provider_run_id, slow.status, slow.pending) == ("wfr_run789", RunStatus.IN_PROGRESS, None)


async def test_start_rejects_a_bad_agent_name_without_calling(
    adapter: reminix.ReminixProvider, fake: FakeReminix
) -> None:
    with pytest.raises(errors.PermanentProviderError):
        await adapter.create_run("../admin", {}, idempotency_key="k")
    assert fake.requests == []


async def test_idempotency_key_can_be_turned_off(fake: FakeReminix, clock: FakeClock) -> None:
    fake.route("POST", "/v1/agents/done/workflow", payload("start_completed_api"))
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        adapter = reminix.build(settings(send_idempotency_key=False), http=http, clock=clock)
        await adapter.create_run("done", {}, idempotency_key="k1")
    assert "Idempotency-Key" not in fake.requests[-1].headers


async def test_personal_token_sends_the_project(clock: FakeClock) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=payload("get_run_running"))

    ctx = ParseContext(environ={"PAT": "reminix_pat_abc"})
    parsed = reminix.parse_settings("r", {"base_url": BASE, "api_key_env": "PAT", "project": "proj_42"}, ctx)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        await reminix.build(parsed, http=http, clock=clock).get_run("wfr_abc123")
    assert seen[0].headers["Authorization"] == "Bearer reminix_pat_abc"
    assert seen[0].headers["X-Project"] == "proj_42"


@pytest.mark.parametrize(
    ("name", "status", "provider_status"),
    [
        ("get_run_running", RunStatus.IN_PROGRESS, "running"),
        ("get_run_paused", RunStatus.PENDING, "paused"),
        ("get_run_completed", RunStatus.COMPLETE, "completed"),
        ("get_run_failed", RunStatus.ERROR, "failed"),
    ],
)
async def test_get_run_record(
    adapter: reminix.ReminixProvider, fake: FakeReminix, name: str, status: RunStatus, provider_status: str
) -> None:
    fake.route("GET", "/v1/workflow-runs/wfr_abc123", payload(name))
    snap = await adapter.get_run("wfr_abc123")
    assert (snap.provider_run_id, snap.status, snap.provider_status) == ("wfr_abc123", status, provider_status)
    assert (snap.pending is not None) == (status == RunStatus.PENDING)


async def test_get_run_details(adapter: reminix.ReminixProvider, fake: FakeReminix) -> None:
    fake.route("GET", "/v1/workflow-runs/wfr_abc123", payload("get_run_completed"))
    done = await adapter.get_run("wfr_abc123")
    assert done.output is not None and done.output["result"] == {"team": "enterprise-sales"}
    fake.route("GET", "/v1/workflow-runs/wfr_abc123", payload("get_run_failed"))
    failed = await adapter.get_run("wfr_abc123")
    assert failed.error == {"message": "workflow timed out while paused"}


async def test_unknown_status_maps_to_unknown(adapter: reminix.ReminixProvider, fake: FakeReminix) -> None:
    fake.route("GET", "/v1/workflow-runs/wfr_abc123", {**payload("get_run_running"), "status": "archived"})
    snap = await adapter.get_run("wfr_abc123")
    assert (snap.status, snap.provider_status) == (RunStatus.UNKNOWN, "archived")
    fake.route("GET", "/v1/workflow-runs/wfr_abc123", {"id": "wfr_abc123", "status": 7})
    assert (await adapter.get_run("wfr_abc123")).status == RunStatus.UNKNOWN


async def test_get_run_unreadable_body_is_permanent(adapter: reminix.ReminixProvider, fake: FakeReminix) -> None:
    fake.routes[("GET", "/v1/workflow-runs/x")] = lambda r: httpx.Response(200, content=b"<html>")
    with pytest.raises(errors.PermanentProviderError, match="unreadable"):
        await adapter.get_run("x")


async def test_resume_default_body_sends_the_chosen_option(adapter: reminix.ReminixProvider, fake: FakeReminix) -> None:
    fake.route("POST", "/v1/workflow-runs/wfr_abc123/resume", payload("resume_completed_concepts"))
    pending = PendingInput(key="approval", kind="confirmation", options=["approve", "reject", "escalate"])
    snap = await adapter.resume_run("wfr_abc123", pending, {"decision": "approve"})
    assert fake.body() == {"input": {"resume": {"step": "approval", "input": "approve"}}}
    assert snap is not None and snap.status == RunStatus.COMPLETE
    assert snap.output is not None and snap.output["result"] == {"team": "enterprise-sales"}


async def test_resume_without_options_sends_the_object_and_may_pause_again(
    adapter: reminix.ReminixProvider, fake: FakeReminix
) -> None:
    fake.route("POST", "/v1/workflow-runs/wfr_abc123/resume", payload("resume_paused_input_api"))
    snap = await adapter.resume_run("wfr_abc123", PendingInput(key="notes", kind="input"), {"note": "ok"})
    assert fake.body() == {"input": {"resume": {"step": "notes", "input": {"note": "ok"}}}}
    assert snap is not None and snap.pending is not None
    assert (snap.status, snap.pending.key, snap.pending.assignee) == (RunStatus.PENDING, "budget", "finance")
    assert snap.pending.schema == payload("resume_paused_input_api")["pendingAction"]["inputSchema"]


async def test_resume_input_body_shape(fake: FakeReminix, clock: FakeClock) -> None:
    fake.route("POST", "/v1/workflow-runs/wfr_abc123/resume", payload("resume_running_api"))
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        adapter = reminix.build(settings(resume_body="input"), http=http, clock=clock)
        snap = await adapter.resume_run(
            "wfr_abc123", PendingInput(key="approval", options=["approve"]), {"decision": "approve"}
        )
    assert fake.body() == {"input": {"decision": "approve"}}
    assert snap is not None and snap.status == RunStatus.IN_PROGRESS


async def test_resume_answer_without_a_body(adapter: reminix.ReminixProvider, fake: FakeReminix) -> None:
    fake.routes[("POST", "/v1/workflow-runs/r1/resume")] = lambda r: httpx.Response(202)
    assert await adapter.resume_run("r1", None, {"x": 1}) is None


async def test_cancel_deletes_the_run(adapter: reminix.ReminixProvider, fake: FakeReminix) -> None:
    fake.route("DELETE", "/v1/workflow-runs/wfr_abc123", None, status=204)
    await adapter.cancel_run("wfr_abc123")
    assert (fake.requests[-1].method, fake.requests[-1].url.path) == ("DELETE", "/v1/workflow-runs/wfr_abc123")


async def test_ids_cannot_change_the_path(adapter: reminix.ReminixProvider, fake: FakeReminix) -> None:
    fake.route("GET", "/v1/workflow-runs/a/../b", payload("get_run_running"))  # the fake matches decoded paths
    await adapter.get_run("a/../b")
    assert fake.requests[-1].url.raw_path == b"/v1/workflow-runs/a%2F..%2Fb"
    with pytest.raises(errors.PermanentProviderError):
        await adapter.get_run("..")


async def test_no_webhooks(adapter: reminix.ReminixProvider) -> None:
    with pytest.raises(errors.NotFound, match="no webhooks"):
        await adapter.parse_notification(b"{}", {}, T0)


@pytest.mark.parametrize(
    ("status", "name", "kind", "code"),
    [
        (401, "error_code_shape", errors.PermanentProviderError, "invalid_api_key"),
        (404, "error_agent_not_found", errors.PermanentProviderError, "agent_not_found"),
        (400, "error_plain", errors.PermanentProviderError, "Invalid request"),
        (502, "error_type_shape", errors.TransientProviderError, "ExecutionError"),
        (504, "error_timeout", errors.TransientProviderError, "TimeoutError"),
        (429, "error_rate_limit", errors.TransientProviderError, "rate_limit_exceeded"),
    ],
)
async def test_error_shapes(
    adapter: reminix.ReminixProvider,
    fake: FakeReminix,
    status: int,
    name: str,
    kind: type[errors.ProviderError],
    code: str,
) -> None:
    fake.route("GET", "/v1/workflow-runs/r1", payload(name), status=status)
    with pytest.raises(kind) as caught:
        await adapter.get_run("r1")
    assert caught.value.status_code == status
    assert caught.value.message == f"GET /v1/workflow-runs/r1 answered {status} ({code})"
    assert type(caught.value) is kind


async def test_error_message_never_carries_the_provider_message(
    adapter: reminix.ReminixProvider, fake: FakeReminix
) -> None:
    fake.route("GET", "/v1/workflow-runs/r1", {"error": "patient Jane Doe, born 1970-01-01, not found"}, status=404)
    with pytest.raises(errors.PermanentProviderError) as caught:
        await adapter.get_run("r1")
    assert "Jane" not in caught.value.message


async def test_wrong_key_is_permanent(clock: FakeClock, fake: FakeReminix) -> None:
    ctx = ParseContext(environ={"K": "reminix_sk_wrong"})
    parsed = reminix.parse_settings("r", {"base_url": BASE, "api_key_env": "K"}, ctx)
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        with pytest.raises(errors.PermanentProviderError) as caught:
            await reminix.build(parsed, http=http, clock=clock).get_run("r1")
    assert caught.value.status_code == 401


async def test_429_retry_after_holds_further_calls(
    adapter: reminix.ReminixProvider, fake: FakeReminix, clock: FakeClock
) -> None:
    fake.route("GET", "/v1/workflow-runs/r1", payload("error_rate_limit"), status=429, **{"Retry-After": "30"})
    with pytest.raises(errors.TransientProviderError) as first:
        await adapter.get_run("r1")
    assert first.value.retry_after == 30
    fake.route("GET", "/v1/workflow-runs/r1", payload("get_run_running"))
    clock.current += timedelta(seconds=10)
    with pytest.raises(errors.TransientProviderError) as held:
        await adapter.get_run("r1")
    assert (held.value.status_code, held.value.retry_after) == (429, 20)
    assert len(fake.requests) == 1  # held locally: not sent
    clock.current += timedelta(seconds=20)
    assert (await adapter.get_run("r1")).status == RunStatus.IN_PROGRESS


async def test_rate_limit_headers_on_success_hold_the_next_call(
    adapter: reminix.ReminixProvider, fake: FakeReminix, clock: FakeClock
) -> None:
    reset = str(int((T0 + timedelta(seconds=45)).timestamp()))
    fake.route(
        "GET",
        "/v1/workflow-runs/r1",
        payload("get_run_running"),
        **{"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
    )
    assert (await adapter.get_run("r1")).status == RunStatus.IN_PROGRESS
    with pytest.raises(errors.TransientProviderError) as held:
        await adapter.get_run("r1")
    assert held.value.retry_after == 45
    clock.current += timedelta(seconds=45)
    await adapter.get_run("r1")
    assert len(fake.requests) == 2


async def test_network_failure_is_transient(clock: FakeClock) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with httpx.AsyncClient(transport=httpx.MockTransport(broken)) as http:
        with pytest.raises(errors.TransientProviderError, match="ConnectError"):
            await reminix.build(settings(), http=http, clock=clock).get_run("r1")


def test_resume_body_shapes() -> None:
    options = PendingInput(key="approval", options=["approve", "reject"])
    assert reminix.resume_body("resume", options, {"decision": "reject"}) == {
        "input": {"resume": {"step": "approval", "input": "reject"}}
    }
    assert reminix.resume_body("resume", None, {"a": 1}) == {"input": {"resume": {"step": None, "input": {"a": 1}}}}
    assert reminix.resume_body("input", options, {"decision": "reject"}) == {"input": {"decision": "reject"}}


def test_pending_input_tolerates_odd_actions() -> None:
    assert reminix.pending_input(None) == PendingInput(kind="input")
    odd = reminix.pending_input({"step": 3, "options": [], "inputSchema": "x"})
    assert odd == PendingInput(kind="input")
