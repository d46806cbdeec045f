"""TransactionLink webhook public keys, fetched by ``kid`` from ``GET /auth/webhooks/key/{kid}`` and cached.

A webhook's ``kid`` comes from an unauthenticated header, so key fetches are guarded: known keys are kept
(least recently used first out) and answer without any call; an unknown ``kid`` (404 or an unusable key) is
remembered for ``miss_ttl`` seconds; at most one fetch starts per ``min_interval`` seconds per provider, and an
unknown ``kid`` that arrives while fetches are cooling down is refused at once (401) without a call. No lock is
held across the network call: requests for the ``kid`` being fetched wait on that one fetch, others go on.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.core import jws
from gateway.domain import errors
from gateway.domain.ports import Clock

Fetch = Callable[[str], Awaitable[bytes | None]]  # None: the provider does not know this kid
MAX_MISSES = 256
MIN_FETCH_INTERVAL = 10.0  # seconds between key fetches for one provider
_UNFETCHABLE = frozenset({".", ".."})  # path segments that cannot name a key


class KeyCache:
    def __init__(
        self,
        fetch: Fetch,
        *,
        clock: Clock,
        size: int = 16,
        miss_ttl: float = 300.0,
        min_interval: float = MIN_FETCH_INTERVAL,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._size = size
        self._miss_ttl = timedelta(seconds=miss_ttl)
        self._min_interval = timedelta(seconds=min_interval)
        self._keys: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
        self._misses: OrderedDict[str, datetime] = OrderedDict()
        self._fetching: dict[str, asyncio.Task[rsa.RSAPublicKey | None]] = {}
        self._last_fetch: datetime | None = None

    async def get(self, kid: str) -> rsa.RSAPublicKey:
        """The key for ``kid``; SignatureError when there is none (TransientProviderError passes)."""
        key = self._keys.get(kid)
        if key is not None:
            self._keys.move_to_end(kid)
            return key
        fetch = self._fetching.get(kid) or self._start_fetch(kid)
        key = await asyncio.shield(fetch)
        if key is None:
            raise errors.SignatureError("unknown JWS key id")
        return key

    def _start_fetch(self, kid: str) -> asyncio.Task[rsa.RSAPublicKey | None]:
        now = self._clock.now()
        missed = self._misses.get(kid)
        if kid in _UNFETCHABLE or (missed is not None and missed > now):
            raise errors.SignatureError("unknown JWS key id")
        if self._last_fetch is not None and now - self._last_fetch < self._min_interval:
            raise errors.SignatureError("unknown JWS key id (key fetches are cooling down)")
        self._last_fetch = now
        task = asyncio.ensure_future(self._fetch_and_keep(kid))
        self._fetching[kid] = task
        task.add_done_callback(lambda done: self._fetched(kid, done))
        return task

    async def _fetch_and_keep(self, kid: str) -> rsa.RSAPublicKey | None:
        key = _load(await self._fetch(kid))
        if key is None:
            self._remember_miss(kid, self._clock.now())
            return None
        self._keys[kid] = key
        self._misses.pop(kid, None)
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return key

    def _fetched(self, kid: str, task: asyncio.Task[rsa.RSAPublicKey | None]) -> None:
        self._fetching.pop(kid, None)
        if not task.cancelled():
            task.exception()  # retrieved here: every waiter may have gone

    def _remember_miss(self, kid: str, now: datetime) -> None:
        self._misses[kid] = now + self._miss_ttl
        self._misses.move_to_end(kid)
        while len(self._misses) > MAX_MISSES:
            self._misses.popitem(last=False)


def _load(text: bytes | None) -> rsa.RSAPublicKey | None:
    if text is None:
        return None
    try:
        return jws.load_public_key(text)
    except (ValueError, UnsupportedAlgorithm):
        return None
