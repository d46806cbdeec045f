"""The http sink: POST each run outcome as JSON, signed with Standard Webhooks headers.

The ``webhook-id`` and ``Idempotency-Key`` are the delivery id, the same on every retry; the timestamp comes
from the clock, so each attempt carries a fresh signature (one per configured secret, for rotation). 410 Gone,
or a failure answered with ``webhook-delivery: abort-message``, stops the retries. Redirects are never followed
and the response is read only up to ``max_response_bytes``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from gateway.core import fastjson, signing
from gateway.core.config_types import ParseContext, Secret
from gateway.domain import errors
from gateway.domain.model import DeliveryEnvelope
from gateway.domain.ports import Clock, DeliveryReceipt
from gateway.outbound import http as _http
from gateway.sinks import COMMON_KEYS

KNOWN_KEYS = frozenset({"url", "secret_env", "timeout", "headers", "auth_header_env", "max_response_bytes", "internal"})
DEFAULT_TIMEOUT = 15.0
DEFAULT_MAX_RESPONSE_BYTES = 65_536
MAX_RESPONSE_BYTES_LIMIT = 16 * 1024 * 1024
THROTTLE_STATUSES = frozenset({408, 425, 429})
ABORT_MESSAGE = "abort-message"  # `webhook-delivery: abort-message` on a non-2xx answer: stop retrying (Svix-style)

_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "transfer-encoding", "connection", "idempotency-key"}
)
_CREDENTIAL_HEADER_WORDS = ("auth", "cookie", "token", "secret", "password", "apikey", "api-key", "api_key")
_CREDENTIAL_QUERY_PARTS = frozenset("token key apikey secret password passwd pwd sig signature auth credential".split())
_CREDENTIAL_QUERY_WORDS = ("token", "secret", "password", "signature", "apikey", "credential")


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSinkSettings:
    """Meaningful only when parsing reported no problems."""

    name: str
    url: str
    secrets: tuple[Secret, ...]  # every one signs each delivery (rotation)
    timeout: float = DEFAULT_TIMEOUT
    headers: Mapping[str, str] = field(default_factory=dict)
    auth_header: Secret | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    internal: bool = False  # plain http:// is allowed only for a sink flagged internal (S8)


def parse_settings(name: str, data: Mapping[str, Any], ctx: ParseContext) -> HttpSinkSettings:
    key = f"sinks.{name}"
    ctx.unknown_keys(key, data, set(KNOWN_KEYS | COMMON_KEYS))
    internal = ctx.boolean(f"{key}.internal", data.get("internal"), default=False)
    url = _parse_url(f"{key}.url", data.get("url"), ctx)
    if url is not None and url.startswith("http://") and not internal:
        ctx.problem(f"{key}.url", "must be https:// (set internal = true for a plain-http internal sink)")
    secrets = ctx.signing_secrets(f"{key}.secret_env", data.get("secret_env"))
    timeout = ctx.number(f"{key}.timeout", data.get("timeout"), default=DEFAULT_TIMEOUT, minimum=0.1, maximum=300)
    max_response_bytes = ctx.integer(
        f"{key}.max_response_bytes",
        data.get("max_response_bytes"),
        default=DEFAULT_MAX_RESPONSE_BYTES,
        minimum=0,
        maximum=MAX_RESPONSE_BYTES_LIMIT,
    )
    return HttpSinkSettings(
        name=name,
        url=url or "",
        secrets=secrets,
        timeout=timeout,
        headers=_parse_headers(f"{key}.headers", data.get("headers"), ctx),
        auth_header=ctx.secret(f"{key}.auth_header_env", data.get("auth_header_env"), required=False),
        max_response_bytes=max_response_bytes,
        internal=internal,
    )


def _parse_url(key: str, value: Any, ctx: ParseContext) -> str | None:
    url = ctx.url(key, value)
    if url is None:
        return None
    parts = urlsplit(url)
    if "@" in parts.netloc:
        ctx.problem(key, "must not carry credentials (user:password@); use auth_header_env")
        return None
    if any(_is_credential_query_key(k) for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
        ctx.problem(key, "must not carry credentials in the query string; use auth_header_env")
        return None
    return url


def _is_credential_query_key(name: str) -> bool:
    lowered = name.lower()
    parts = {p for p in re.split(r"[^a-z0-9]+", lowered) if p}
    squashed = re.sub(r"[^a-z0-9]", "", lowered)
    return bool(parts & _CREDENTIAL_QUERY_PARTS) or any(w in squashed for w in _CREDENTIAL_QUERY_WORDS)


def _parse_headers(key: str, value: Any, ctx: ParseContext) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, text in ctx.table(key, value).items():
        problem = _header_problem(name, text)
        if problem:
            ctx.problem(f"{key}.{name}", problem)
        else:
            headers[name] = text
    return headers


def _header_problem(name: str, value: Any) -> str | None:
    lowered = name.lower()
    if not _HEADER_NAME.match(name):
        return "is not a valid header name"
    if lowered in _RESERVED_HEADERS or lowered.startswith("webhook-"):
        return "is set by the sink and cannot be configured"
    if any(word in lowered for word in _CREDENTIAL_HEADER_WORDS):
        return "looks like a credential; use auth_header_env instead of a literal value"
    if not isinstance(value, str) or "\r" in value or "\n" in value:
        return "must be a single-line string"
    return None


class HttpSink:
    def __init__(self, settings: HttpSinkSettings, *, http: httpx.AsyncClient, clock: Clock) -> None:
        self.name = settings.name
        self._settings = settings
        self._keys = [signing.parse_signing_key(secret.reveal()) for secret in settings.secrets]
        self._http = http
        self._clock = clock
        self._timeout = httpx.Timeout(settings.timeout, connect=min(5.0, settings.timeout))

    async def deliver(self, envelope: DeliveryEnvelope) -> DeliveryReceipt:
        body = fastjson.dumps(envelope.body())
        label = f"sink {self.name}: delivery {envelope.delivery_id}"
        try:
            async with asyncio.timeout(self._settings.timeout):
                answer = await self._post(envelope.delivery_id, body)
        except (TimeoutError, httpx.TimeoutException):
            raise errors.TransientSinkError(f"{label} timed out") from None
        except httpx.HTTPError as exc:
            raise errors.TransientSinkError(f"{label} failed ({type(exc).__name__})") from None
        return _outcome(label, answer, self._clock.now())

    async def _post(self, delivery_id: str, body: bytes) -> _Answer:
        request = self._http.build_request(
            "POST",
            self._settings.url,
            content=body,
            headers=self._headers(delivery_id, body),
            timeout=self._timeout,
        )
        response = await self._http.send(request, stream=True, follow_redirects=False)
        try:
            size = await _drain(response, self._settings.max_response_bytes)
        finally:
            await response.aclose()
        return _Answer(
            status=response.status_code,
            retry_after=response.headers.get("retry-after"),
            abort=response.headers.get("webhook-delivery", "").strip().lower() == ABORT_MESSAGE,
            size=size,
        )

    def _headers(self, delivery_id: str, body: bytes) -> dict[str, str]:
        timestamp = int(self._clock.now().timestamp())
        headers = dict(self._settings.headers)
        if self._settings.auth_header is not None:
            headers["Authorization"] = self._settings.auth_header.reveal()
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = delivery_id
        headers.update(signing.sign_headers(self._keys, delivery_id, timestamp, body))
        return headers

    async def aclose(self) -> None:
        """The http client belongs to the caller; nothing to close here."""


async def _drain(response: httpx.Response, limit: int) -> int:
    """Read and drop the body, stopping once ``limit`` bytes have been seen; returns the bytes seen."""
    if limit <= 0:
        return 0
    if response.is_stream_consumed:  # an answer read whole already (an in-process transport)
        try:
            return min(len(response.content), limit)
        except httpx.ResponseNotRead:
            return 0
    seen = 0
    async for chunk in response.aiter_raw():
        seen += len(chunk)
        if seen >= limit:
            break
    return seen


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    retry_after: str | None
    abort: bool  # the receiver said `webhook-delivery: abort-message`: stop retrying this delivery
    size: int


def _outcome(label: str, answer: _Answer, now: datetime) -> DeliveryReceipt:
    status, size = answer.status, answer.size
    reason = httpx.codes.get_reason_phrase(status)
    if 200 <= status < 300:
        return DeliveryReceipt(status_code=status, detail=f"{status} {reason}".strip(), response_bytes=size)
    message = f"{label} got HTTP {status}"
    if status == 410:
        raise errors.PermanentSinkError(message, status_code=status, response_bytes=size)
    if answer.abort:
        raise errors.PermanentSinkError(f"{message} (webhook-delivery: abort-message)", status_code=status)
    if status in THROTTLE_STATUSES or status >= 500:
        delay = _http.parse_retry_after(answer.retry_after, now)
        if delay is not None:
            delay = min(delay, _http.MAX_RETRY_AFTER)
        raise errors.TransientSinkError(message, status_code=status, retry_after=delay, response_bytes=size)
    raise errors.TransientSinkError(message, status_code=status, response_bytes=size)


def build(settings: HttpSinkSettings, *, http: httpx.AsyncClient, clock: Clock) -> HttpSink:
    return HttpSink(settings, http=http, clock=clock)
