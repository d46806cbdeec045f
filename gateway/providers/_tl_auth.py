"""TransactionLink credentials: the organisation token, or legacy key/secret access and refresh tokens.

Organisation tokens (``tot_...``) go in ``Authorization`` as they are, with no ``Bearer`` (PROVIDERS.md §2.1).
Legacy: ``POST /auth/authorize`` ``{key, secret}`` gives ``{accessToken, refreshToken, expiryDuration,
tokenType}``; the access token is renewed ``margin`` seconds before it expires with ``POST /auth/refresh``
``{refreshToken}``, and with a fresh authorize when the refresh is refused. ``expiryDuration`` is taken as
seconds ([I]: 3600 is the value seen).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from gateway.core.config_types import Secret
from gateway.domain import errors
from gateway.domain.model import JSON
from gateway.domain.ports import Clock

DEFAULT_TTL = 3600.0

Post = Callable[[str, JSON], Awaitable[httpx.Response]]


class TokenAuth:
    """A static organisation token."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    async def header(self, *, rejected: str | None = None) -> str:
        return self._token.reveal()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Tokens:
    access: str = field(repr=False)
    refresh: str | None = field(repr=False)
    renew_at: datetime


class LegacyAuth:
    """Key/secret exchanged for access + refresh tokens; one renewal at a time."""

    def __init__(self, key: Secret, secret: Secret, *, post: Post, clock: Clock, margin: float) -> None:
        self._key = key
        self._secret = secret
        self._post = post
        self._clock = clock
        self._margin = margin
        self._tokens: _Tokens | None = None
        self._lock = asyncio.Lock()

    async def header(self, *, rejected: str | None = None) -> str:
        """``Bearer <access token>``; ``rejected`` is a header the API refused (401), which forces a renewal."""
        async with self._lock:
            cached = self._tokens
            if cached and f"Bearer {cached.access}" != rejected and self._clock.now() < cached.renew_at:
                return f"Bearer {cached.access}"
            self._tokens = None
            self._tokens = await self._renew(cached)
            return f"Bearer {self._tokens.access}"

    async def _renew(self, cached: _Tokens | None) -> _Tokens:
        if cached is not None and cached.refresh:
            try:
                return await self._exchange("/auth/refresh", {"refreshToken": cached.refresh})
            except errors.PermanentProviderError:
                pass  # the refresh token is spent or revoked: authorize again
        credentials = {"key": self._key.reveal(), "secret": self._secret.reveal()}
        return await self._exchange("/auth/authorize", credentials)

    async def _exchange(self, path: str, body: JSON) -> _Tokens:
        requested_at = self._clock.now()
        answer = _object(await self._post(path, body))
        access = answer.get("accessToken")
        if not isinstance(access, str) or not access:
            raise errors.PermanentProviderError(f"POST {path} answered without an accessToken")
        refresh = answer.get("refreshToken")
        ttl = _positive(answer.get("expiryDuration")) or DEFAULT_TTL
        margin = min(self._margin, ttl / 2)
        return _Tokens(
            access=access,
            refresh=refresh if isinstance(refresh, str) and refresh else None,
            renew_at=requested_at + timedelta(seconds=ttl - margin),
        )


def _object(response: httpx.Response) -> Mapping[str, Any]:
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)
