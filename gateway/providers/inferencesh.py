"""inference.sh flow runs: Bearer API key, numeric statuses, SSE run streams, RFC 9457 problem errors.

Reference: PROVIDERS.md §3 and seed 003. Runs can be cancelled but never take input after they start. There
are no flow-run webhooks: the stream follower (``gateway.engine.follower``) reads ``GET /flowruns/{id}/stream``
through ``stream_run``, and runs are also polled every ``poll_interval`` seconds (the only source of news
when the stream is unavailable).

Both API versions are read: ``X-API-Version: 2`` gives bare objects and ``application/problem+json`` errors,
v1 wraps them in ``{success, status, data | error}``. The 412 "requirements not met" body is reported by
requirement *type* only (its keys and messages may name the caller's secrets). ``X-RateLimit-Remaining: 0``
closes a gate until ``X-RateLimit-Reset``: a wait up to ``max_rate_wait`` seconds is slept through, a longer
one reschedules the job (TransientProviderError with ``retry_after``), so runs are not failed for it.
Unknown ([U]): flow-run rate limits, whether creates are idempotent (``idempotency_header``: set it only when
inference.sh confirms one; then a start whose answer was lost is retried by default, see gateway.engine.starts), the
cancel response body (ignored).
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from gateway.core import sse
from gateway.core.config_types import ParseContext, Secret
from gateway.domain import errors
from gateway.domain.model import JSON, Notification, PendingInput, RunSnapshot, RunStatus
from gateway.domain.ports import Capabilities, Clock, PushKind, StartProgress
from gateway.domain.streaming import StreamPolicy
from gateway.outbound import http as _http
from gateway.providers import _ratelimit

DEFAULT_BASE_URL = "https://api.inference.sh"
STATUSES: Mapping[int, RunStatus] = {
    0: RunStatus.UNKNOWN,
    1: RunStatus.CREATED,
    2: RunStatus.IN_PROGRESS,
    3: RunStatus.COMPLETE,
    4: RunStatus.ERROR,
    5: RunStatus.CANCELLED,
}
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_KNOWN_KEYS = {
    "kind",
    "base_url",
    "api_key_env",
    "api_version",
    "idempotency_header",
    "poll_interval",
    "max_rate_wait",
    "stream",
    "stream_idle_timeout",
    "stream_max_runs",
    "stream_reconnects",
    "stream_reconnect_delay",
    "stream_max_delay",
    "stream_scan_interval",
    "timeout",
}

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class InferenceShSettings:
    name: str
    base_url: str
    api_key: Secret
    api_version: int = 2
    idempotency_header: str | None = None
    poll_interval: float = 30.0
    max_rate_wait: float = 5.0
    stream: bool = True
    stream_idle_timeout: float = 300.0
    stream_policy: StreamPolicy = field(default_factory=StreamPolicy)
    timeout: float = 30.0


def parse_settings(name: str, data: Mapping[str, Any], ctx: ParseContext) -> InferenceShSettings:
    key = f"providers.{name}"
    ctx.unknown_keys(key, data, _KNOWN_KEYS)

    def number(field: str, default: float, low: float, high: float) -> float:
        return ctx.number(f"{key}.{field}", data.get(field), default=default, minimum=low, maximum=high)

    return InferenceShSettings(
        name=name,
        base_url=ctx.url(f"{key}.base_url", data.get("base_url", DEFAULT_BASE_URL)) or DEFAULT_BASE_URL,
        api_key=ctx.secret(f"{key}.api_key_env", data.get("api_key_env")) or Secret(""),
        api_version=ctx.integer(f"{key}.api_version", data.get("api_version"), default=2, minimum=0, maximum=99),
        idempotency_header=ctx.string(f"{key}.idempotency_header", data.get("idempotency_header"), required=False),
        poll_interval=number("poll_interval", 30.0, 0, 86400),
        max_rate_wait=number("max_rate_wait", 5.0, 0, 60),
        stream=ctx.boolean(f"{key}.stream", data.get("stream"), default=True),
        stream_idle_timeout=number("stream_idle_timeout", 300.0, 1, 3600),
        stream_policy=StreamPolicy(
            max_runs=ctx.integer(f"{key}.stream_max_runs", data.get("stream_max_runs"), default=100, minimum=1),
            reconnects=ctx.integer(
                f"{key}.stream_reconnects", data.get("stream_reconnects"), default=5, minimum=0, maximum=100
            ),
            reconnect_delay=number("stream_reconnect_delay", 1.0, 0, 600),
            max_delay=number("stream_max_delay", 30.0, 0, 3600),
            scan_interval=number("stream_scan_interval", 1.0, 0.05, 600),
        ),
        timeout=number("timeout", 30.0, 0.1, 600),
    )


def build(settings: InferenceShSettings, *, http: httpx.AsyncClient, clock: Clock) -> InferenceShProvider:
    return InferenceShProvider(settings, http=http, clock=clock)


class InferenceShProvider:
    def __init__(
        self, settings: InferenceShSettings, *, http: httpx.AsyncClient, clock: Clock, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.name = settings.name
        self.idempotent_start = settings.idempotency_header is not None
        push = PushKind.STREAM if settings.stream else PushKind.POLL
        self.capabilities = Capabilities(can_resume=False, can_cancel=True, push=push)
        self.poll_interval = settings.poll_interval or None
        self.stream_policy = settings.stream_policy
        self._settings = settings
        self._http = http
        self._clock = clock
        self._sleep = sleep
        self._gate = _ratelimit.RateGate()

    async def create_run(
        self, template: str, input: JSON, *, idempotency_key: str, progress: StartProgress | None = None
    ) -> RunSnapshot:
        header = self._settings.idempotency_header
        extra = {header: idempotency_key} if header else {}
        body = await self._call("POST", "/flowruns", {"flow": template, "input": input}, extra)
        snapshot = _snapshot("", body)
        if not snapshot.provider_run_id:
            raise errors.PermanentProviderError(
                f"POST /flowruns for flow {template} answered without an id", maybe_applied=True
            )
        return snapshot

    async def get_run(self, provider_run_id: str, *, state_hint: str | None = None) -> RunSnapshot:
        return _snapshot(provider_run_id, await self._call("GET", f"/flowruns/{_http.segment(provider_run_id)}"))

    async def resume_run(self, provider_run_id: str, pending: PendingInput | None, input: JSON) -> RunSnapshot | None:
        raise errors.UnsupportedOperation("inference.sh flow runs take no input after they start")

    async def cancel_run(self, provider_run_id: str) -> None:
        await self._call("POST", f"/flowruns/{_http.segment(provider_run_id)}/cancel", expect_body=False)

    async def parse_notification(self, body: bytes, headers: Mapping[str, str], now: datetime) -> Notification:
        raise errors.NotFound("inference.sh sends no flow-run notifications; runs are streamed and polled")

    async def aclose(self) -> None:
        return None

    # stream ---------------------------------------------------------------------------------------

    async def stream_run(self, provider_run_id: str) -> AsyncIterator[RunSnapshot]:
        """Follow ``GET /flowruns/{id}/stream``: one snapshot per message that carries a status."""
        await self._pass_gate()
        headers = {**self._headers(), "Accept": "text/event-stream"}
        url = f"{self._settings.base_url}/flowruns/{_http.segment(provider_run_id)}/stream"
        limit = self._settings.timeout
        timeout = httpx.Timeout(limit, read=self._settings.stream_idle_timeout)
        request = self._http.build_request("GET", url, headers=headers, timeout=timeout)
        try:
            response = await self._http.send(request, stream=True, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise errors.TransientProviderError(f"{_http.where(request)} failed: {type(exc).__name__}") from None
        try:
            await self._check_stream(response)
            async for snapshot in _read_stream(provider_run_id, response):
                yield snapshot
        except (httpx.HTTPError, ValueError) as exc:
            raise errors.TransientProviderError(f"{_http.where(request)} dropped: {type(exc).__name__}") from None
        finally:
            await response.aclose()

    async def _check_stream(self, response: httpx.Response) -> None:
        self._gate.observe(response.headers, self._clock.now())
        if 200 <= response.status_code < 300:
            return
        raise self._failure(response, await _http._read_capped(response, _http.MAX_BODY_BYTES))

    # HTTP -----------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._settings.api_key.reveal()}", "Accept": "application/json"}
        if self._settings.api_version:
            headers["X-API-Version"] = str(self._settings.api_version)
        return headers

    async def _call(
        self,
        method: str,
        path: str,
        body: JSON | None = None,
        extra: Mapping[str, str] | None = None,
        *,
        expect_body: bool = True,
    ) -> JSON:
        await self._pass_gate()
        response = await _http.send_any(
            self._http,
            method,
            self._settings.base_url + path,
            headers={**self._headers(), **(extra or {})},
            json=body,
            timeout=self._settings.timeout,
        )
        self._gate.observe(response.headers, self._clock.now())
        if not 200 <= response.status_code < 300:
            raise self._failure(response, response.content)
        if not expect_body:
            return {}
        return _resource(response, self._clock.now())

    async def _pass_gate(self) -> None:
        wait = self._gate.wait(self._clock.now())
        if wait > self._settings.max_rate_wait:
            raise errors.TransientProviderError(
                "inference.sh rate limit reached; waiting for the reset", retry_after=wait
            )
        if wait > 0:
            await self._sleep(wait)

    def _failure(self, response: httpx.Response, body: bytes) -> errors.ProviderError:
        error = failure(response, body, self._clock.now())
        if response.status_code == 429:
            self._gate.block(error.retry_after or _ratelimit.DEFAULT_WAIT, self._clock.now())
        return error


def failure(response: httpx.Response, body: bytes, now: datetime) -> errors.ProviderError:
    """The error for a non-2xx answer: named by status and the problem code, never by body text."""
    status = response.status_code
    data = _loads(body)
    where = _http.where(response.request)
    if status == 412:
        return errors.PermanentProviderError(
            f"{where} answered 412: requirements not met ({_requirement_types(data)})", status_code=412
        )
    code = _problem_code(data)
    message = f"{where} answered {status}" + (f" ({code})" if code else "")
    if status in _http.TRANSIENT_STATUSES or status >= 500:
        return errors.TransientProviderError(
            message,
            status_code=status,
            retry_after=_http.retry_delay(response.headers, now, status=status),
            maybe_applied=status >= 500,
        )
    return errors.PermanentProviderError(message, status_code=status)


def _requirement_types(data: Any) -> str:
    items = data.get("errors") if isinstance(data, dict) else None
    kinds = sorted(
        {i["type"] for i in items or [] if isinstance(i, dict) and isinstance(i.get("type"), str)}
        if isinstance(items, list)
        else set()
    )
    return ", ".join(k for k in kinds if _CODE.fullmatch(k)) or "unspecified"


def _problem_code(data: Any) -> str | None:
    """RFC 9457 ``type`` suffix (v2) or ``error.code`` (v1), when it looks like a code."""
    if not isinstance(data, dict):
        return None
    code: Any = None
    if isinstance(data.get("type"), str):
        code = data["type"].rstrip("/").rpartition("/")[2]
    elif isinstance(data.get("error"), dict):
        code = data["error"].get("code")
    return code if isinstance(code, str) and _CODE.fullmatch(code) else None


def _resource(response: httpx.Response, now: datetime) -> JSON:
    """The resource of a 2xx answer, unwrapping a v1 envelope; a v1 ``success: false`` is an error."""
    data = _loads(response.content)
    if isinstance(data, dict) and isinstance(data.get("success"), bool) and ("data" in data or "error" in data):
        if not data["success"]:
            status = data.get("status")
            code = status if isinstance(status, int) and not isinstance(status, bool) and status >= 400 else 502
            fake = httpx.Response(code, request=response.request, headers=response.headers)
            raise failure(fake, response.content, now)
        data = data.get("data")
    if not isinstance(data, dict):
        raise errors.PermanentProviderError(f"{_http.where(response.request)} answered a body that is not an object")
    return data


async def _read_stream(provider_run_id: str, response: httpx.Response) -> AsyncIterator[RunSnapshot]:
    parser = sse.Parser()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    state: JSON = {}
    async for chunk in response.aiter_bytes():
        for event in parser.feed(decoder.decode(chunk)):
            if _merge(state, _loads(event.data.encode())):
                yield _snapshot(provider_run_id, state)


def _merge(state: JSON, message: Any) -> bool:
    """Fold one stream message into the run seen so far; True when the run now has a status.

    A message is a full FlowRun, a partial update ``{"data": {...}, "fields": [...]}``, or either inside a
    v1 envelope. Anything else (pings, other event types' payloads) is ignored.
    """
    if isinstance(message, dict) and isinstance(message.get("success"), bool) and isinstance(message.get("data"), dict):
        message = message["data"]
    if not isinstance(message, dict):
        return False
    data, fields = message.get("data"), message.get("fields")
    if isinstance(data, dict) and isinstance(fields, list):
        state.update({f: data[f] for f in fields if isinstance(f, str) and f in data})
    elif "status" in message or "id" in message:
        state.clear()
        state.update(message)
    else:
        return False
    return _status_code(state.get("status")) is not None


def _snapshot(provider_run_id: str, body: JSON) -> RunSnapshot:
    code = _status_code(body.get("status"))
    output = body.get("output")
    error = body.get("error")
    run_id = body.get("id")
    return RunSnapshot(
        provider_run_id=run_id if isinstance(run_id, str) and run_id else provider_run_id,
        status=STATUSES.get(code, RunStatus.UNKNOWN) if code is not None else RunStatus.UNKNOWN,
        provider_status="" if code is None else str(code),
        output=output if isinstance(output, dict) else (None if output is None else {"value": output}),
        error={"message": error} if isinstance(error, str) and error else None,
    )


def _status_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
