"""Background upkeep: purge payloads past their retention on a schedule."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from gateway.config.protection import RetentionSettings
from gateway.domain.ports import Clock
from gateway.store.maintenance import purge_payloads
from gateway.store.sqlstore import SqlStore

log = logging.getLogger("gateway.housekeeping")


class Housekeeper:
    def __init__(self, *, store: SqlStore, retention: RetentionSettings, clock: Clock) -> None:
        self.store = store
        self.retention = retention
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def purge_once(self) -> dict[str, int]:
        cutoff = self.clock.now() - timedelta(days=self.retention.payload_days)
        purged = await purge_payloads(self.store, cutoff)
        if any(purged.values()):
            log.info("payloads purged", extra=purged)
        return purged

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="gateway-housekeeping")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.purge_once()
            except Exception as exc:
                log.error("purge failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(self.retention.purge_interval)
