"""Password hashing off the event loop: argon2id takes tens of milliseconds of CPU, so each hash runs in a worker
thread (argon2-cffi releases the GIL), at most ``limit`` at a time so logins cannot take every core."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def default_limit() -> int:
    """One core fewer than the machine has (at least one), so requests keep a core while logins hash."""
    return max(1, (os.cpu_count() or 2) - 1)


class PasswordWorkers:
    def __init__(self, limit: int | None = None) -> None:
        self._slots = asyncio.Semaphore(limit or default_limit())

    async def run(self, hash_work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self._slots:
            return await asyncio.to_thread(hash_work, *args, **kwargs)
