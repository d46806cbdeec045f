"""HTTP helpers shared by the provider adapters: one send, one status classification, Retry-After parsing.

Error messages name the method, the URL path and the status code only: never bodies, query strings or headers.
Redirects are never followed; a 3xx is a permanent failure.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from gateway.domain import errors
from gateway.domain.ports import Clock

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_RETRY_AFTER = 3600.0  # a longer wait is capped; the retry policy decides the rest
TRANSIENT_STATUSES = frozenset({408, 425, 429})
_EPOCH_THRESHOLD = 1_000_000_000  # an X-RateLimit-Reset above this is a Unix time, below it a delay
_SECONDS = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")
_DROPPED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay in seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def parse_rate_limit_reset(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from ``X-RateLimit-Reset``: a Unix time or a delay, told apart by size."""
    if value is None or not _SECONDS.fullmatch(value.strip()):
        return None
    number = float(value)
    if number > _EPOCH_THRESHOLD:
        return max(0.0, number - now.timestamp())
    return number


def retry_delay(headers: Mapping[str, str], now: datetime, *, status: int | None = None) -> float | None:
    """The server's requested wait, capped at MAX_RETRY_AFTER.

    ``Retry-After`` always counts. ``X-RateLimit-Reset`` says when the budget refills, which is a reason to wait
    only when the budget is spent: ``X-RateLimit-Remaining: 0``, or a 429 that does not say what remains. A 500
    with budget left is retried on the caller's own backoff.
    """
    delay = parse_retry_after(headers.get("retry-after"), now)
    if delay is None and budget_spent(headers, status=status):
        delay = parse_rate_limit_reset(headers.get("x-ratelimit-reset"), now)
    if delay is None or not math.isfinite(delay):
        return None
    return min(delay, MAX_RETRY_AFTER)


def budget_spent(headers: Mapping[str, str], *, status: int | None = None) -> bool:
    """``X-RateLimit-Remaining`` is 0 (or less), or the answer is a 429 without that header."""
    remaining = headers.get("x-ratelimit-remaining")
    if remaining is None:
        return status == 429
    text = remaining.strip()
    return text.lstrip("-").isdigit() and text.isascii() and int(text) <= 0


def where(request: httpx.Request) -> str:
    """``METHOD /path`` for messages: no host, no query string."""
    return f"{request.method} {request.url.path}"


def classify(response: httpx.Response, *, now: datetime) -> None:
    """Return for a 2xx; raise TransientProviderError or PermanentProviderError otherwise."""
    status = response.status_code
    if 200 <= status < 300:
        return
    message = f"{where(response.request)} answered {status}"
    if status in TRANSIENT_STATUSES or status >= 500:
        delay = retry_delay(response.headers, now, status=status)
        raise errors.TransientProviderError(message, status_code=status, retry_after=delay, maybe_applied=status >= 500)
    raise errors.PermanentProviderError(message, status_code=status)


def lost(request: httpx.Request, exc: BaseException) -> errors.TransientProviderError:
    """The error for a call that got no answer. Only a failure to connect proves the request was not sent;
    after a read timeout or a dropped connection the provider may have done the work."""
    unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return errors.TransientProviderError(f"{where(request)} timed out", maybe_applied=not unsent)
    return errors.TransientProviderError(f"{where(request)} failed: {type(exc).__name__}", maybe_applied=not unsent)


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    json: Any = None,
    timeout: float,
    clock: Clock,
    max_bytes: int = MAX_BODY_BYTES,
) -> httpx.Response:
    """Send one request with an overall deadline; return the 2xx response with its body read (capped)."""
    request = http.build_request(method, url, headers=dict(headers), json=json, timeout=timeout)
    try:
        async with asyncio.timeout(timeout):
            return await _exchange(http, request, clock, max_bytes)
    except (TimeoutError, httpx.TransportError) as exc:
        raise lost(request, exc) from None
    except httpx.DecodingError:
        raise errors.PermanentProviderError(f"{where(request)} answered an undecodable body") from None


async def _exchange(http: httpx.AsyncClient, request: httpx.Request, clock: Clock, max_bytes: int) -> httpx.Response:
    response = await http.send(request, stream=True, follow_redirects=False)
    try:
        classify(response, now=clock.now())
        body = await _read_capped(response, max_bytes)
    finally:
        await response.aclose()
    kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _DROPPED_HEADERS]
    return httpx.Response(response.status_code, headers=kept, content=body, request=request)


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise errors.PermanentProviderError(
                f"{where(response.request)} answered a body over {max_bytes} bytes",
                status_code=response.status_code,
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def send_any(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    json: Any = None,
    timeout: float,
    max_bytes: int = MAX_BODY_BYTES,
) -> httpx.Response:
    """Like ``send``, but every status comes back with its body read (capped), for adapters that read
    error bodies before classifying. Transport failures still raise TransientProviderError."""
    request = http.build_request(method, url, headers=dict(headers), json=json, timeout=timeout)
    try:
        async with asyncio.timeout(timeout):
            response = await http.send(request, stream=True, follow_redirects=False)
            try:
                body = await _read_capped(response, max_bytes)
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TransportError) as exc:
        raise lost(request, exc) from None
    except httpx.DecodingError:
        raise errors.PermanentProviderError(f"{where(request)} answered an undecodable body") from None
    kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _DROPPED_HEADERS]
    return httpx.Response(response.status_code, headers=kept, content=body, request=request)


def segment(value: str) -> str:
    """An id as one URL path segment: ``/``, ``?``, ``#`` and ``..`` cannot change the path."""
    if value in {"", ".", ".."}:
        raise errors.PermanentProviderError("an empty or dot-only id cannot name a provider resource")
    return quote(value, safe="")


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The response body as a JSON object, or None when it is not one."""
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None
