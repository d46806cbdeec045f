"""The operator review desk: who may act (operators, keys, UI logins), queue policies (priority, four-eyes,
SLA clocks), claims, decisions, alerts and the hash-chained audit trail."""

from __future__ import annotations
