"""Abuse limits (A14): failed-auth throttling per client address and per-source event rate limits.

``AuthThrottle`` guards the ``/v1/`` routes and the operator login form: every 401 spends a token from the
caller's address bucket, and an address whose bucket is empty gets 429 with ``Retry-After`` before its request
is looked at. ``SourceLimits`` holds one bucket per source that has a ``rate_limit``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from starlette.types import Scope, Send

from gateway import errors
from gateway.core.ratelimit import RateLimit, TokenBuckets
from gateway.ports import Clock
from gateway.settings import SourceSettings

GUARDED_PREFIX = ("/v1/", "/ui/login")  # the JSON API and the operator login form


def retry_after_seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


class AuthThrottle:
    """Asked by the front of the app (``gateway.web.front``) before and after each guarded request."""

    def __init__(self, *, limit: RateLimit | None, clock: Clock) -> None:
        self.buckets = TokenBuckets(limit) if limit is not None else None
        self.clock = clock

    def guards(self, scope: Scope) -> bool:
        return self.buckets is not None and scope["path"].startswith(GUARDED_PREFIX)

    async def refuse(self, scope: Scope, send: Send) -> bool:
        """Answer 429 when the caller's address has no tokens left; True when it did."""
        assert self.buckets is not None
        wait = self.buckets.wait(_client_address(scope), self._now())
        if wait is None:
            return False
        await _too_many(send, wait)
        return True

    def answered(self, scope: Scope, status: int) -> None:
        """Every 401 spends a token from the caller's address bucket."""
        if status == 401 and self.buckets is not None:
            self.buckets.spend(_client_address(scope), self._now())

    def _now(self) -> float:
        return self.clock.now().timestamp()


def _client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def _too_many(send: Send, wait: float) -> None:
    body = json.dumps(
        {"error": {"code": "rate_limited", "message": "too many failed authentication attempts"}}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after_seconds(wait)).encode()),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SourceLimits:
    """One token bucket per rate-limited source."""

    def __init__(self, sources: Mapping[str, SourceSettings], clock: Clock) -> None:
        self.clock = clock
        self._buckets = {
            name: TokenBuckets(source.rate_limit, max_keys=1)
            for name, source in sources.items()
            if source.rate_limit is not None
        }

    def check(self, source: str) -> None:
        """Spend one of ``source``'s tokens or raise RateLimited with the wait."""
        buckets = self._buckets.get(source)
        if buckets is None:
            return
        wait = buckets.take(source, self.clock.now().timestamp())
        if wait is not None:
            raise errors.RateLimited(
                f"source {source!r} is over its event rate limit", retry_after=retry_after_seconds(wait)
            )
