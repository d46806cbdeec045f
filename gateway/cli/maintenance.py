"""CLI commands for store upkeep: ``gateway purge`` and ``gateway keys rotate-data``."""

from __future__ import annotations

import argparse
import json
import sys

from gateway.config.settings import Settings
from gateway.domain.ports import SystemClock
from gateway.engine.housekeeping import Housekeeper
from gateway.runtime.wiring import sealer_for
from gateway.store.maintenance import reseal
from gateway.store.sealing import AesGcmSealer


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.store import open_store

    sealer = sealer_for(settings)
    store = await open_store(settings.store.url, sealer=sealer, busy_timeout_ms=settings.store.busy_timeout_ms)
    try:
        await store.migrate()
        if args.command == "purge":
            purged = await Housekeeper(store=store, retention=settings.retention, clock=SystemClock()).purge_once()
            print(json.dumps({"purged": purged}))
            return 0
        if not isinstance(sealer, AesGcmSealer):
            print("gateway: no data key is configured ([encryption] key_env or key_file)", file=sys.stderr)
            return 2
        changed = await reseal(store, sealer)
        print(json.dumps({"resealed": changed, "key_id": sealer.current.id}))
        return 0
    finally:
        await store.aclose()
