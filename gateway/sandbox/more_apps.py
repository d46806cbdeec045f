"""Builds the emulators of the other flow APIs (TransactionLink, inference.sh) that ``[sandbox]`` turns on.

They run the same templates with the same engine, and share the Sohar emulator's scheduler, so one
background task (and ``run_until_idle`` in tests) drives every emulated API.
"""

from __future__ import annotations

import random

import httpx
from starlette.applications import Starlette

from gateway.domain.ports import Clock
from gateway.sandbox.config import SandboxSettings
from gateway.sandbox.inf_api import create_inf_app
from gateway.sandbox.inferencesh import InfEmulator
from gateway.sandbox.scheduler import Scheduler
from gateway.sandbox.tl_api import create_tl_app
from gateway.sandbox.transactionlink import TLEmulator


def more_apps(
    settings: SandboxSettings, *, http: httpx.AsyncClient, clock: Clock, rng: random.Random, scheduler: Scheduler
) -> dict[str, Starlette]:
    apps: dict[str, Starlette] = {}
    templates, delay = settings.templates, settings.step_delay
    if settings.transactionlink is not None:
        tl = TLEmulator(
            settings.transactionlink,
            templates=templates,
            step_delay=delay,
            http=http,
            clock=clock,
            rng=rng,
            scheduler=scheduler,
        )
        apps["transactionlink"] = create_tl_app(tl)
    if settings.inferencesh is not None:
        inf = InfEmulator(
            settings.inferencesh, templates=templates, step_delay=delay, clock=clock, rng=rng, scheduler=scheduler
        )
        apps["inferencesh"] = create_inf_app(inf)
    return apps
