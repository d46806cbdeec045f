"""An emulator of the Sohar Flows API, mounted by the gateway when ``[sandbox]`` is enabled.

Templates are declared in config and run by the pure ``engine``; one background task advances runs and
posts Svix-signed ``flow.updated`` webhooks. State is in memory.

A plug-in: may import ``store``, ``outbound``, ``observability``, ``core`` and ``domain``; not the other
plug-ins, and nothing above them."""

from __future__ import annotations

from gateway.sandbox.app import SandboxApp, create_sandbox_app
from gateway.sandbox.config import SandboxSettings, parse_sandbox

__all__ = ["SandboxApp", "SandboxSettings", "create_sandbox_app", "parse_sandbox"]
