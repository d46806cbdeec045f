"""Bounded state for the sandbox: a long demo must not grow without end (runs, keys, tokens, counters)."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")
MAX_ENTRIES = 10_000  # per map: far more than a demo has in flight, small enough to keep memory flat


class Bounded(OrderedDict[K, V]):
    """A dict that forgets its least recently written entries beyond ``limit``."""

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        self.limit = limit or MAX_ENTRIES

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


class BoundedCounter(Bounded[str, int]):
    """Counts per key, like ``collections.Counter``, keeping at most ``limit`` keys."""

    def __missing__(self, key: str) -> int:
        return 0


class BoundedTokens(Bounded[str, datetime]):
    """Bearer tokens and when each expires, at most ``limit`` of them: a flood of token requests forgets the oldest.

    Tokens are written with the same lifetime, so the first entry expires first; ``forget_expired`` drops
    expired ones from the front without scanning the whole map."""

    def forget_expired(self, now: datetime) -> None:
        while self:
            token, until = next(iter(self.items()))
            if until > now:
                return
            del self[token]


class BoundedSet(Bounded[str, None]):
    """A set of at most ``limit`` strings that forgets the least recently added."""

    def add(self, value: str) -> None:
        self[value] = None

    def discard(self, value: str) -> None:
        self.pop(value, None)
