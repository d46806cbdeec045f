"""The operating system's randomness, read 4 KiB at a time instead of one system call per id."""

from __future__ import annotations

import os
import random
import threading

POOL_BYTES = 4096


class PooledSystemRandom(random.SystemRandom):
    """``random.SystemRandom`` (the same source, unpredictable ids) drawing from a buffer of ``os.urandom`` bytes.

    No two draws share bytes: a lock keeps threads apart (AES-GCM nonces are drawn in the writer thread too),
    and the buffer is refilled in a forked child before its first draw."""

    def __init__(self) -> None:
        super().__init__()
        self._pool = b""
        self._at = 0
        self._pid = -1
        self._lock = threading.Lock()

    def _take(self, count: int) -> bytes:
        if count > POOL_BYTES:
            return os.urandom(count)
        with self._lock:
            if self._at + count > len(self._pool) or self._pid != os.getpid():
                self._pool, self._at, self._pid = os.urandom(POOL_BYTES), 0, os.getpid()
            start, self._at = self._at, self._at + count
            return self._pool[start : self._at]

    def getrandbits(self, k: int) -> int:
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        size = (k + 7) // 8
        return int.from_bytes(self._take(size), "big") >> (size * 8 - k)

    def random(self) -> float:
        return (int.from_bytes(self._take(7), "big") >> 3) * 2.0**-53

    def randbytes(self, n: int) -> bytes:
        return self._take(n)
