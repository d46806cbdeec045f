"""Time-ordered, prefixed identifiers (ULID-like), so newest-first lists can page by id."""

from __future__ import annotations

import base64
import random
from datetime import datetime

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


_FROM_RFC4648 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())


def _encode80(value: int) -> str:
    """``_encode(value, 16)`` for ``value < 2**80``, done by the C base32 encoder."""
    return base64.b32encode(value.to_bytes(10, "big")).translate(_FROM_RFC4648).decode()


def new_id(prefix: str, now: datetime, rng: random.Random) -> str:
    """``prefix_`` + 10 chars of millisecond time + 16 random chars; sorts by creation time."""
    millis = int(now.timestamp() * 1000)
    return f"{prefix}_{_encode80(millis)[-10:]}{_encode80(rng.getrandbits(80))}"
