"""Reminix workflows: a static API key, start / get / resume / cancel a workflow run, no webhooks (polled).

Reference: PROVIDERS.md §4 and seed 004. Facts marked unknown there are settings here:
``resume_body`` (which resume body the server takes), ``send_idempotency_key`` (documented for invoke only),
``poll_interval`` (no push: the gateway polls), ``default_task`` (how a flow input becomes ``input.task``).
Start and resume answer in one of two documented shapes (A: ``{run_id, status, state, pendingAction}``,
B: ``{run_id, output: {status, steps, result, pendingAction}}``); GET answers a camelCase record with ``id``.
All three are read by one tolerant parser.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from gateway.core.config_types import ParseContext, Secret
from gateway.domain import errors
from gateway.domain.model import JSON, Notification, PendingInput, RunSnapshot, RunStatus
from gateway.domain.ports import Capabilities, Clock, PushKind, StartProgress
from gateway.outbound import http as _http
from gateway.providers._ratelimit import RateGate

DEFAULT_BASE_URL = "https://api.reminix.com"
DEFAULT_TASK = "Run the {template} workflow"
RESUME_BODIES = ("resume", "input")
STATUSES: Mapping[str, RunStatus] = {
    "running": RunStatus.IN_PROGRESS,
    "paused": RunStatus.PENDING,
    "completed": RunStatus.COMPLETE,
    "failed": RunStatus.ERROR,
}
_AGENT_NAME = re.compile(r"[A-Za-z0-9_-]+")
_ERROR_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}")
_KNOWN_KEYS = {
    "kind",
    "base_url",
    "api_key_env",
    "project",
    "resume_body",
    "send_idempotency_key",
    "default_task",
    "poll_interval",
    "timeout",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ReminixSettings:
    name: str
    base_url: str
    api_key: Secret = field(repr=False)
    project: str | None = None  # X-Project; required with a personal access token (reminix_pat_)
    resume_body: str = "resume"  # "resume": {"input": {"resume": {"step", "input"}}}; "input": {"input": decision}
    send_idempotency_key: bool = True
    default_task: str = DEFAULT_TASK
    poll_interval: float = 5.0
    timeout: float = 30.0


def parse_settings(name: str, data: Mapping[str, Any], ctx: ParseContext) -> ReminixSettings:
    """One Reminix provider's settings. Problems go to ``ctx``; if there are any, the result is unusable."""
    key = f"providers.{name}"
    ctx.unknown_keys(key, data, _KNOWN_KEYS)
    api_key = ctx.secret(f"{key}.api_key_env", data.get("api_key_env")) or Secret("")
    project = ctx.string(f"{key}.project", data.get("project"), required=False)
    token = api_key.reveal()
    if token and not token.startswith("reminix_"):
        ctx.problem(f"{key}.api_key_env", "must hold a Reminix key (reminix_sk_... or reminix_pat_...)")
    if token.startswith("reminix_pat_") and project is None:
        ctx.problem(f"{key}.project", "is required with a personal access token (reminix_pat_...)")
    resume_body = ctx.string(f"{key}.resume_body", data.get("resume_body"), default="resume") or "resume"
    if resume_body not in RESUME_BODIES:
        ctx.problem(f"{key}.resume_body", f"must be one of {', '.join(RESUME_BODIES)}")
    return ReminixSettings(
        name=name,
        base_url=ctx.url(f"{key}.base_url", data.get("base_url", DEFAULT_BASE_URL)) or DEFAULT_BASE_URL,
        api_key=api_key,
        project=project,
        resume_body=resume_body,
        send_idempotency_key=ctx.boolean(f"{key}.send_idempotency_key", data.get("send_idempotency_key"), default=True),
        default_task=ctx.string(f"{key}.default_task", data.get("default_task"), default=DEFAULT_TASK) or DEFAULT_TASK,
        poll_interval=ctx.number(
            f"{key}.poll_interval", data.get("poll_interval"), default=5.0, minimum=0.01, maximum=3600
        ),
        timeout=ctx.number(f"{key}.timeout", data.get("timeout"), default=30.0, minimum=0.1, maximum=600),
    )


def build(settings: ReminixSettings, *, http: httpx.AsyncClient, clock: Clock) -> ReminixProvider:
    return ReminixProvider(settings, http=http, clock=clock)


class ReminixProvider:
    capabilities = Capabilities(can_resume=True, can_cancel=True, push=PushKind.POLL)
    idempotent_start = False  # Idempotency-Key is documented for invoke; for workflow starts it is only inferred

    def __init__(self, settings: ReminixSettings, *, http: httpx.AsyncClient, clock: Clock) -> None:
        self.name = settings.name
        self.poll_interval = settings.poll_interval
        self._settings = settings
        self._http = http
        self._clock = clock
        self._gate = RateGate(settings.name)

    async def create_run(
        self, template: str, input: JSON, *, idempotency_key: str, progress: StartProgress | None = None
    ) -> RunSnapshot:
        if not _AGENT_NAME.fullmatch(template):
            raise errors.PermanentProviderError("a Reminix agent name is letters, digits, '-' and '_' only")
        extra = {"Idempotency-Key": idempotency_key} if self._settings.send_idempotency_key else {}
        body = {"input": self._start_input(template, input)}
        response = await self._call("POST", f"/v1/agents/{template}/workflow", body, extra)
        try:
            return _required_snapshot(response, None, f"start of agent {template}")
        except errors.PermanentProviderError as exc:
            raise errors.PermanentProviderError(exc.message, maybe_applied=True) from None  # a 2xx: it may run

    async def get_run(self, provider_run_id: str, *, state_hint: str | None = None) -> RunSnapshot:
        response = await self._call("GET", f"/v1/workflow-runs/{_http.segment(provider_run_id)}")
        return _required_snapshot(response, provider_run_id, f"get of run {provider_run_id}")

    async def resume_run(self, provider_run_id: str, pending: PendingInput | None, input: JSON) -> RunSnapshot | None:
        """Send the decision; None when the 2xx answer carries no readable status."""
        body = resume_body(self._settings.resume_body, pending, input)
        response = await self._call("POST", f"/v1/workflow-runs/{_http.segment(provider_run_id)}/resume", body)
        data = _http.json_object(response)
        return snapshot(data, provider_run_id) if data is not None else None

    async def cancel_run(self, provider_run_id: str) -> None:
        await self._call("DELETE", f"/v1/workflow-runs/{_http.segment(provider_run_id)}")

    async def parse_notification(self, body: bytes, headers: Mapping[str, str], now: datetime) -> Notification:
        raise errors.NotFound(f"provider {self.name!r} has no webhooks (Reminix runs are polled)")

    async def aclose(self) -> None:
        return None

    def _start_input(self, template: str, input: JSON) -> JSON:
        """A flow input that has a ``task`` string is sent as it is; any other becomes ``{task, state}``."""
        if isinstance(input.get("task"), str):
            return input
        return {"task": self._settings.default_task.replace("{template}", template), "state": input}

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self._settings.api_key.reveal()}"}
        if self._settings.project:
            headers["X-Project"] = self._settings.project
        return headers

    async def _call(
        self, method: str, path: str, body: JSON | None = None, extra: Mapping[str, str] | None = None
    ) -> httpx.Response:
        self._gate.check(self._clock.now())
        headers = {**self._headers(), **(extra or {})}
        request = self._http.build_request(
            method, self._settings.base_url + path, headers=headers, json=body, timeout=self._settings.timeout
        )
        try:
            async with asyncio.timeout(self._settings.timeout):
                response = await self._exchange(request)
        except (TimeoutError, httpx.TransportError) as exc:
            raise _http.lost(request, exc) from None
        self._gate.observe(response.headers, self._clock.now())
        return response

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        """Like ``_http.send``, but an error body is read too, so the provider's error code can be named."""
        response = await self._http.send(request, stream=True, follow_redirects=False)
        try:
            body = await _http._read_capped(response, _http.MAX_BODY_BYTES)
        finally:
            await response.aclose()
        now = self._clock.now()
        try:
            _http.classify(response, now=now)
        except errors.ProviderError as exc:
            if exc.status_code == 429 and exc.retry_after is not None:
                self._gate.block(exc.retry_after, now)
            raise _with_code(exc, body) from None
        kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _http._DROPPED_HEADERS]
        return httpx.Response(response.status_code, headers=kept, content=body, request=request)


def resume_body(shape: str, pending: PendingInput | None, decision: JSON) -> JSON:
    """The resume request body in the configured shape.

    ``resume`` (default, concepts page): ``{"input": {"resume": {"step": S, "input": X}}}`` where X is the chosen
    option (a string) when the pause offers options, else the decision object. ``input`` (API reference):
    ``{"input": decision}``.
    """
    if shape == "input":
        return {"input": decision}
    value: Any = decision
    if pending is not None and pending.options is not None and isinstance(decision.get("decision"), str):
        value = decision["decision"]
    step = pending.key if pending is not None else None
    return {"input": {"resume": {"step": step, "input": value}}}


def snapshot(body: JSON, fallback_id: str | None) -> RunSnapshot:
    """A RunSnapshot from shape A, shape B or the GET record; unknown statuses map to UNKNOWN."""
    nested = body.get("output")
    container = nested if isinstance(nested, dict) and "status" in nested else body
    found_state = container.get("state")
    state: JSON = found_state if isinstance(found_state, dict) else {}
    raw = container.get("status")
    provider_status = raw if isinstance(raw, str) else ""
    status = STATUSES.get(provider_status, RunStatus.UNKNOWN)
    run_id = _text(body.get("run_id")) or _text(body.get("id")) or fallback_id or ""
    action = container.get("pendingAction") or body.get("pendingAction")
    return RunSnapshot(
        provider_run_id=run_id,
        status=status,
        provider_status=provider_status,
        output=_output(container, state),
        error=_failure(container, state) if status == RunStatus.ERROR else None,
        pending=pending_input(action) if status == RunStatus.PENDING else None,
    )


def pending_input(action: Any) -> PendingInput:
    """``pendingAction`` as a PendingInput (step, type, message, options, inputSchema, assignee)."""
    if not isinstance(action, dict):
        return PendingInput(kind="input")
    options = action.get("options")
    schema = action.get("inputSchema")
    return PendingInput(
        key=_text(action.get("step")),
        kind=_text(action.get("type")) or "input",
        message=_text(action.get("message")),
        options=[str(o) for o in options] if isinstance(options, list) and options else None,
        schema=schema if isinstance(schema, dict) else None,
        assignee=_text(action.get("assignee")),
    )


def error_code(body: bytes) -> str | None:
    """The provider's error code from any documented error body: ``{"error": {"code"|"type"}}``,
    ``{"type", "message"}`` or ``{"error": "Invalid request"}``. Only short code-like text is kept."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    inner = data.get("error")
    candidates: list[Any] = [inner] if isinstance(inner, str) else []
    for where in (inner, data):
        if isinstance(where, dict):
            candidates += [where.get("code"), where.get("type")]
    return next((c for c in candidates if isinstance(c, str) and _ERROR_CODE.fullmatch(c)), None)


def _with_code(exc: errors.ProviderError, body: bytes) -> errors.ProviderError:
    code = error_code(body)
    if code is None:
        return exc
    return type(exc)(
        f"{exc.message} ({code})",
        status_code=exc.status_code,
        retry_after=exc.retry_after,
        maybe_applied=exc.maybe_applied,
    )


def _output(container: JSON, state: JSON) -> JSON | None:
    result = container.get("result", state.get("result"))
    steps = container.get("steps", state.get("steps"))
    if result is None and steps is None:
        return None
    return {"result": result, "steps": steps}


def _failure(container: JSON, state: JSON) -> JSON:
    detail = container.get("error", state.get("error"))
    if isinstance(detail, dict):
        return detail
    return {"message": detail if isinstance(detail, str) else "the workflow failed"}


def _required_snapshot(response: httpx.Response, fallback_id: str | None, what: str) -> RunSnapshot:
    data = _http.json_object(response)
    if data is None:
        raise errors.PermanentProviderError(f"Reminix {what} answered an unreadable body")
    found = snapshot(data, fallback_id)
    if not found.provider_run_id:
        raise errors.PermanentProviderError(f"Reminix {what} answered without a run id")
    return found


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
