"""Abuse limits (A14): failed-auth throttling per client address and credential kind, per-source event limits.

``FailedAuth`` keeps one token bucket per (client address, credential kind); every 401 spends a token. It
never blocks a request that authenticates: bearer tokens and signatures are checked anyway, and only a failed
check from an address that is out of attempts answers 429 (with ``Retry-After``) instead of 401. Passwords
are the exception: an address out of password attempts gets 429 before the password is looked at, so the
throttle cannot be used as a password oracle. The client address is the socket peer, or what a proxy listed
in ``[server] trusted_proxies`` forwarded (uvicorn rewrites the ASGI ``client`` for those alone).

``AuthThrottle`` is what the front of the app (``gateway.web.front``) asks about each request; ``SourceLimits``
holds one bucket per source that has a ``rate_limit``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from starlette.types import Scope, Send

from gateway.config.settings import SourceSettings
from gateway.core.ratelimit import RateLimit, TokenBuckets
from gateway.domain import errors
from gateway.domain.ports import Clock

PASSWORD = "password"  # the operator login form
TOKEN = "token"  # bearer credentials on the JSON API (operator keys and tokens, source tokens)
SIGNATURE = "signature"  # signed webhooks and signed event sources
SANDBOX = "sandbox"  # the embedded sandbox's own credentials (demo mode)
CHECKED_AFTER_BLOCK = frozenset({PASSWORD})  # refused unchecked while the address is out of attempts


def retry_after_seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


def credential_kind(scope: Scope) -> str | None:
    """Which kind of credential a request presents, or None for routes the throttle does not watch."""
    path: str = scope["path"]
    if path.startswith("/ui/login"):
        return PASSWORD if scope["method"] == "POST" else None  # the form itself stays reachable
    if path.startswith("/sandbox/"):
        return SANDBOX
    if not path.startswith("/v1/"):
        return None
    if path.startswith("/v1/webhooks/") or (path.startswith("/v1/events/") and not _has_authorization(scope)):
        return SIGNATURE
    return TOKEN


def _has_authorization(scope: Scope) -> bool:
    return any(name == b"authorization" for name, _ in scope["headers"])


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class FailedAuth:
    """Failed-authentication buckets keyed by (client address, credential kind)."""

    def __init__(self, limit: RateLimit, clock: Clock) -> None:
        self.buckets = TokenBuckets(limit)
        self.clock = clock

    def refuse_unchecked(self, address: str, kind: str) -> float | None:
        """The wait, when this request must be refused before its credential is checked (passwords only)."""
        if kind not in CHECKED_AFTER_BLOCK:
            return None
        return self.buckets.wait(f"{kind} {address}", self._now())

    def failed(self, address: str, kind: str) -> float | None:
        """Record one failure; the wait when the address was already out of attempts (answer 429, not 401)."""
        key, now = f"{kind} {address}", self._now()
        wait = self.buckets.wait(key, now)
        self.buckets.spend(key, now)
        return wait

    def _now(self) -> float:
        return self.clock.now().timestamp()


class AuthThrottle:
    """Asked by the front of the app about each request: which credential kind it presents, whether it must be
    refused before its credential is checked, and what its 401 costs."""

    def __init__(self, *, limit: RateLimit | None, clock: Clock) -> None:
        self.failures = FailedAuth(limit, clock) if limit is not None else None

    def watches(self, scope: Scope) -> str | None:
        """The credential kind this request is counted under, or None when the throttle does not watch it."""
        return credential_kind(scope) if self.failures is not None else None

    def refuse_unchecked(self, scope: Scope, kind: str) -> float | None:
        assert self.failures is not None
        return self.failures.refuse_unchecked(client_address(scope), kind)

    def failed(self, scope: Scope, kind: str) -> float | None:
        """Record a 401; the wait when the address was already out of attempts (answer 429 instead)."""
        assert self.failures is not None
        return self.failures.failed(client_address(scope), kind)


async def too_many(send: Send, wait: float) -> None:
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
