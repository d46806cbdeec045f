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


def new_id(prefix: str, now: datetime, rng: random.Random) -> str:
    """``prefix_`` + 10 chars of millisecond time + 16 random chars; sorts by creation time."""
    millis = int(now.timestamp() * 1000)
    return f"{prefix}_{_encode(millis, 10)}{_encode(rng.getrandbits(80), 16)}"
