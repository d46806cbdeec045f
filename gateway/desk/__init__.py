"""The operator review desk: who may act (operators, keys, UI logins), queue policies (priority, four-eyes,
SLA clocks), claims, decisions, alerts and the timers that drive them. Its records and the audit chain are
domain types (``gateway.domain.desk``, ``gateway.domain.audit``); its commands live in ``gateway.cli.desk``.

May import ``config``, ``store``, ``outbound``, ``observability``, ``core`` and ``domain``; never the engine
or anything above it."""

from __future__ import annotations
