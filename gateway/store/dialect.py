"""The few statements that differ between SQL dialects; everything else in the store is shared SQL."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Dialect:
    name: str
    claim_suffix: str  # appended to the SELECT that picks jobs to claim
    lock: str | None  # takes a transaction-scoped lock on a text key; None where writers are serialised anyway
    notify: str | None  # tells other replicas that work was queued; None where there are no other replicas


SQLITE = Dialect(name="sqlite", claim_suffix="", lock=None, notify=None)
POSTGRES = Dialect(
    name="postgres",
    claim_suffix=" FOR UPDATE SKIP LOCKED",
    lock="SELECT pg_advisory_xact_lock(7243, hashtext(?))",
    notify="SELECT pg_notify('gateway_jobs', '')",
)
_BY_NAME = {d.name: d for d in (SQLITE, POSTGRES)}


def dialect(name: str) -> Dialect:
    return _BY_NAME[name]
