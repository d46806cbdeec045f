"""Operators, API keys and UI logins. Every change writes its audit row in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gateway.domain.audit import AuditEntry
from gateway.domain.desk import ApiKey, Login, Operator
from gateway.store import audit_sql
from gateway.store.codec import from_us, need_dt, to_us
from gateway.store.db import Database, Row


class AccessStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # operators -----------------------------------------------------------------------------------

    async def add_operator(self, operator: Operator, audit: AuditEntry) -> bool:
        async with self.db.write() as tx:
            added = await tx.execute(
                "INSERT INTO operators (name, roles, password_hash, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (operator.name, " ".join(sorted(operator.roles)), operator.password_hash, to_us(operator.created_at)),
            )
            if added:
                await audit_sql.append(tx, [audit], operator.created_at)
        return bool(added)

    async def get_operator(self, name: str) -> Operator | None:
        async with self.db.read() as tx:
            row = await tx.fetchone("SELECT * FROM operators WHERE name = ?", (name,))
        return _operator(row) if row else None

    async def set_password_hash(self, name: str, password_hash: str, audit: AuditEntry, now: datetime) -> None:
        async with self.db.write() as tx:
            await tx.execute("UPDATE operators SET password_hash = ? WHERE name = ?", (password_hash, name))
            await audit_sql.append(tx, [audit], now)

    async def list_operators(self) -> list[Operator]:
        async with self.db.read() as tx:
            rows = await tx.fetchall("SELECT * FROM operators ORDER BY name")
        return [_operator(row) for row in rows]

    # API keys ------------------------------------------------------------------------------------

    async def add_key(self, key: ApiKey, audit: AuditEntry) -> None:
        async with self.db.write() as tx:
            await tx.execute(
                "INSERT INTO api_keys (id, operator, prefix, secret_sha256, scopes, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key.id,
                    key.operator,
                    key.prefix,
                    key.secret_sha256,
                    " ".join(sorted(key.scopes)),
                    to_us(key.created_at),
                    to_us(key.expires_at),
                ),
            )
            await audit_sql.append(tx, [audit], key.created_at)

    async def get_key(self, key_id: str) -> ApiKey | None:
        async with self.db.read() as tx:
            row = await tx.fetchone("SELECT * FROM api_keys WHERE id = ?", (key_id,))
        return _key(row) if row else None

    async def list_keys(self) -> list[ApiKey]:
        async with self.db.read() as tx:
            rows = await tx.fetchall("SELECT * FROM api_keys ORDER BY operator, created_at")
        return [_key(row) for row in rows]

    async def revoke_key(self, key_id: str, now: datetime, audit: AuditEntry) -> bool:
        async with self.db.write() as tx:
            count = await tx.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (to_us(now), key_id)
            )
            if count:
                await audit_sql.append(tx, [audit], now)
        return bool(count)

    # UI logins -----------------------------------------------------------------------------------

    async def add_login(self, id_sha256: bytes, login: Login, audit: AuditEntry) -> None:
        async with self.db.write() as tx:
            await tx.execute(
                "INSERT INTO ui_sessions (id_sha256, operator, created_at, last_seen_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    id_sha256,
                    login.operator,
                    to_us(login.created_at),
                    to_us(login.last_seen_at),
                    to_us(login.expires_at),
                ),
            )
            await audit_sql.append(tx, [audit], login.created_at)

    async def get_login(self, id_sha256: bytes) -> Login | None:
        async with self.db.read() as tx:
            row = await tx.fetchone("SELECT * FROM ui_sessions WHERE id_sha256 = ?", (id_sha256,))
        if row is None:
            return None
        return Login(
            operator=row["operator"],
            created_at=need_dt(row["created_at"]),
            last_seen_at=need_dt(row["last_seen_at"]),
            expires_at=need_dt(row["expires_at"]),
            revoked_at=from_us(row["revoked_at"]),
        )

    async def touch_login(self, id_sha256: bytes, now: datetime, *, unless_after: datetime) -> None:
        """Record activity; skipped when it was recorded recently (fewer writes)."""
        async with self.db.write() as tx:
            await tx.execute(
                "UPDATE ui_sessions SET last_seen_at = ? WHERE id_sha256 = ? AND last_seen_at < ?",
                (to_us(now), id_sha256, to_us(unless_after)),
            )

    async def end_login(self, id_sha256: bytes, now: datetime, audit: Sequence[AuditEntry]) -> bool:
        async with self.db.write() as tx:
            count = await tx.execute(
                "UPDATE ui_sessions SET revoked_at = ? WHERE id_sha256 = ? AND revoked_at IS NULL",
                (to_us(now), id_sha256),
            )
            if count:
                await audit_sql.append(tx, audit, now)
        return bool(count)

    async def audit(self, entries: Sequence[AuditEntry], now: datetime) -> None:
        async with self.db.write() as tx:
            await audit_sql.append(tx, entries, now)


def _operator(row: Row) -> Operator:
    return Operator(
        name=row["name"],
        roles=frozenset(row["roles"].split()),
        created_at=need_dt(row["created_at"]),
        password_hash=row["password_hash"],
        disabled_at=from_us(row["disabled_at"]),
    )


def _key(row: Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        operator=row["operator"],
        prefix=row["prefix"],
        scopes=frozenset(row["scopes"].split()),
        created_at=need_dt(row["created_at"]),
        expires_at=need_dt(row["expires_at"]),
        revoked_at=from_us(row["revoked_at"]),
        secret_sha256=bytes(row["secret_sha256"]),
    )
