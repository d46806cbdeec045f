"""Time-ordered, prefixed identifiers (ULID-like), so newest-first lists can page by id."""

from __future__ import annotations

import random
from datetime import datetime

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # every 10-bit group as its two characters


def _encode80(value: int) -> str:
    """``_encode(value, 16)`` for ``value < 2**80``: eight table look-ups of 10 bits each."""
    p = _PAIRS
    return (
        p[value >> 70 & 1023]
        + p[value >> 60 & 1023]
        + p[value >> 50 & 1023]
        + p[value >> 40 & 1023]
        + p[value >> 30 & 1023]
        + p[value >> 20 & 1023]
        + p[value >> 10 & 1023]
        + p[value & 1023]
    )


def new_id(prefix: str, now: datetime, rng: random.Random) -> str:
    """``prefix_`` + 10 chars of millisecond time + 16 random chars; sorts by creation time."""
    return f"{prefix}_{encode_time(now)}{_encode80(rng.getrandbits(80))}"


def encode_time(now: datetime) -> str:
    """10 characters of millisecond time that sort as the times do."""
    return _encode80(int(now.timestamp() * 1000))[-10:]
