"""Builds the emulators of the other flow APIs (TransactionLink, inference.sh) that ``[sandbox]`` turns on.

They run the same templates with the same engine, and share the Sohar emulator's scheduler, so one
background task (and ``run_until_idle`` in tests) drives every emulated API.
"""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from gateway.sandbox.config import SandboxSettings
from gateway.sandbox.inf_api import create_inf_app
from gateway.sandbox.inferencesh import InfEmulator
from gateway.sandbox.template_emulator import Surroundings
from gateway.sandbox.tl_api import create_tl_app
from gateway.sandbox.transactionlink import TLEmulator


def more_apps(
    settings: SandboxSettings, surroundings: Surroundings, *, http: httpx.AsyncClient
) -> dict[str, Starlette]:
    apps: dict[str, Starlette] = {}
    if settings.transactionlink is not None:
        apps["transactionlink"] = create_tl_app(TLEmulator(settings.transactionlink, surroundings, http=http))
    if settings.inferencesh is not None:
        apps["inferencesh"] = create_inf_app(InfEmulator(settings.inferencesh, surroundings))
    return apps
