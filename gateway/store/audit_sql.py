"""The audit_log table: append inside any write transaction, read in sequence order.

Appends take the chain's lock (a no-op on SQLite, whose single writer already serialises them; an advisory
lock on PostgreSQL, where replicas write concurrently), so reading the last hash and inserting the next row
cannot interleave. Triggers refuse UPDATE and DELETE on the table.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import datetime

from gateway.domain import audit
from gateway.domain.audit import AuditEntry, AuditRecord
from gateway.store.db import Database, Row, Tx
from gateway.store.dialect import dialect

_COLUMNS = "seq, at, actor, action, object, details, prev_hash, hash"


async def append(tx: Tx, entries: Sequence[AuditEntry], now: datetime) -> None:
    if not entries:
        return
    lock = dialect(tx.dialect).lock
    if lock is not None:
        await tx.execute(lock, ("audit_log",))
    last = await tx.fetchone("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    seq, prev = (last["seq"], last["hash"]) if last else (0, audit.GENESIS)
    at_us = audit.to_us(now)
    for entry in entries:
        seq += 1
        digest = audit.link(prev, seq, at_us, entry)
        await tx.execute(
            f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, at_us, entry.actor, entry.action, entry.object, _dumps(entry.details), prev, digest),
        )
        prev = digest


async def records(db: Database, *, batch: int = 1000) -> AsyncIterator[AuditRecord]:
    """Every record in order, read in batches."""
    after = 0
    while True:
        async with db.read() as tx:
            rows = await tx.fetchall(
                f"SELECT {_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", (after, batch)
            )
        for row in rows:
            yield record(row)
        if len(rows) < batch:
            return
        after = rows[-1]["seq"]


async def for_object(db: Database, obj: str, limit: int = 200) -> list[AuditRecord]:
    async with db.read() as tx:
        rows = await tx.fetchall(
            f"SELECT {_COLUMNS} FROM audit_log WHERE object = ? ORDER BY seq LIMIT ?", (obj, limit)
        )
    return [record(row) for row in rows]


def record(row: Row) -> AuditRecord:
    return AuditRecord(
        seq=row["seq"],
        at_us=row["at"],
        actor=row["actor"],
        action=row["action"],
        object=row["object"],
        details=json.loads(row["details"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def _dumps(details: dict[str, object]) -> str:
    return json.dumps(details, separators=(",", ":"), sort_keys=True)


async def append_once_per_login(db: Database, entry: AuditEntry, login: str, now: datetime) -> bool:
    """Append ``entry`` unless this actor's login already has the same action on the same object."""
    async with db.write() as tx:
        rows = await tx.fetchall(
            "SELECT details FROM audit_log WHERE object = ? AND action = ? AND actor = ?",
            (entry.object, entry.action, entry.actor),
        )
        if any(json.loads(row["details"]).get("login") == login for row in rows):
            return False
        await append(tx, [replace(entry, details={**entry.details, "login": login})], now)
    return True
