"""TransactionLink webhook public keys, fetched by ``kid`` from ``GET /auth/webhooks/key/{kid}`` and cached.

Keys are kept (least recently used first out) so a webhook costs no key fetch once its ``kid`` is known. An
unknown ``kid`` (404 or an unusable key) is remembered for ``miss_ttl`` seconds, so forged headers with random
ids cannot make us hammer the key endpoint.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway import errors
from gateway.core import jws
from gateway.ports import Clock

Fetch = Callable[[str], Awaitable[bytes | None]]  # None: the provider does not know this kid
MAX_MISSES = 256


class KeyCache:
    def __init__(self, fetch: Fetch, *, clock: Clock, size: int = 16, miss_ttl: float = 300.0) -> None:
        self._fetch = fetch
        self._clock = clock
        self._size = size
        self._miss_ttl = miss_ttl
        self._keys: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
        self._misses: OrderedDict[str, datetime] = OrderedDict()
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> rsa.RSAPublicKey:
        """The key for ``kid``; SignatureError when the provider has none (TransientProviderError passes)."""
        async with self._lock:
            key = self._keys.get(kid)
            if key is not None:
                self._keys.move_to_end(kid)
                return key
            now = self._clock.now()
            missed = self._misses.get(kid)
            if missed is not None and missed > now:
                raise errors.SignatureError("unknown JWS key id")
            key = _load(await self._fetch(kid))
            if key is None:
                self._remember_miss(kid, now)
                raise errors.SignatureError("unknown JWS key id")
            self._keys[kid] = key
            self._misses.pop(kid, None)
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return key

    def _remember_miss(self, kid: str, now: datetime) -> None:
        self._misses[kid] = now + timedelta(seconds=self._miss_ttl)
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
