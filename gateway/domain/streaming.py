"""What a provider that pushes run updates over a stream (inference.sh SSE) offers the stream follower.

A provider is followed when its capabilities say ``push == STREAM`` and it has ``stream_policy`` and
``stream_run``. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from gateway.domain.model import RunSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamPolicy:
    max_runs: int = 100  # runs followed at once per provider; the rest are polled
    reconnects: int = 5  # drops in a row before the run falls back to polling
    reconnect_delay: float = 1.0  # first wait before a reconnect; doubles up to max_delay, with jitter
    max_delay: float = 30.0
    scan_interval: float = 1.0  # how often the follower looks for runs to follow


class StreamSource(Protocol):
    name: str
    stream_policy: StreamPolicy

    def stream_run(self, provider_run_id: str) -> AsyncIterator[RunSnapshot]:
        """Snapshots as the provider pushes them. Ends when the provider closes the stream; raises
        TransientProviderError when it drops, PermanentProviderError when the stream is refused."""
        ...
