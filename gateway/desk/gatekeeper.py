"""Authentication use cases: bearer credentials (API keys, config operator tokens), UI logins, operators, keys."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from gateway.config.settings import Settings, hash_token
from gateway.desk import access
from gateway.desk.access import Principal
from gateway.desk.password_workers import PasswordWorkers
from gateway.domain import errors
from gateway.domain.audit import AuditEntry
from gateway.domain.desk import ApiKey, Login, Operator
from gateway.domain.ports import Clock
from gateway.store.access_sql import AccessStore

log = logging.getLogger("gateway.access")
_TOUCH_EVERY = timedelta(seconds=30)


class Gatekeeper:
    def __init__(
        self, *, settings: Settings, store: AccessStore, clock: Clock, token_bytes: Callable[[int], bytes]
    ) -> None:
        self.settings = settings
        self.ui = settings.desk.ui
        self.store = store
        self.clock = clock
        self.token_bytes = token_bytes
        self.passwords = PasswordWorkers()
        self._dummy: str | None = None

    # bearer credentials (JSON API) ---------------------------------------------------------------

    async def bearer(self, token: str | None) -> Principal:
        if token is None:
            raise errors.AuthError("missing bearer token")
        parsed = access.parse_key(token)
        if parsed is not None:
            return await self._key(*parsed)
        digest = hash_token(token)
        found = None
        for candidate in self.settings.operator_tokens:
            if hmac.compare_digest(candidate.token_sha256, digest):
                found = candidate
        if found is None:
            raise errors.AuthError("invalid token")
        return Principal(
            name=found.name, roles=access.CONFIG_TOKEN_ROLES, scopes=access.CONFIG_TOKEN_SCOPES, via="token"
        )

    async def _key(self, key_id: str, secret_sha256: bytes) -> Principal:
        key = await self.store.get_key(key_id)
        now = self.clock.now()
        if key is None or not hmac.compare_digest(key.secret_sha256, secret_sha256):
            raise errors.AuthError("invalid token")
        if not key.usable(now):
            log.info("refused a revoked or expired key", extra={"key_id": key_id})
            raise errors.AuthError("the API key is revoked or expired")
        operator = await self.store.get_operator(key.operator)
        if operator is None or operator.disabled_at is not None:
            raise errors.AuthError("the key's operator is disabled")
        scopes = key.scopes & access.role_scopes(operator.roles)
        return Principal(name=operator.name, roles=operator.roles, scopes=scopes, via="key", key_id=key.id)

    # UI logins -----------------------------------------------------------------------------------

    async def login(self, name: str, password: str) -> tuple[str, Principal]:
        """Check the password and open a new server-side login; the returned secret goes in the cookie.

        An unknown, disabled or password-less operator is checked against a dummy hash, so the answer takes
        as long as a wrong password and timing does not tell which names exist."""
        operator = await self.store.get_operator(name)
        now = self.clock.now()
        usable = operator is not None and operator.disabled_at is None and bool(operator.password_hash)
        stored = operator.password_hash if operator is not None and usable else await self._dummy_hash()
        check = await self.passwords.run(access.check_password, password, stored)
        if not (usable and check.ok):
            await self.store.audit([AuditEntry(actor=name[:100], action="login_failed", object="ui")], now)
            raise errors.AuthError("wrong name or password")
        assert operator is not None
        if check.outdated:
            await self._rehash(name, password, now)
        secret = access.session_token(self.token_bytes(32))
        login = Login(
            operator=name,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=self.ui.session_max),
        )
        await self.store.add_login(access.sha256(secret), login, AuditEntry(actor=name, action="login", object="ui"))
        return secret, _principal(operator)

    async def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = await self.passwords.run(access.hash_password, "never a password", self.token_bytes(16))
        return self._dummy

    async def _rehash(self, name: str, password: str, now: datetime) -> None:
        """Replace a scrypt (or weaker argon2) hash after a successful login; old hashes keep working."""
        hashed = await self.passwords.run(access.hash_password, password, self.token_bytes(16))
        entry = AuditEntry(actor=name, action="password_rehashed", object=f"operator:{name}")
        await self.store.set_password_hash(name, hashed, entry, now)

    async def session(self, secret: str | None, *, activity: bool = True) -> Principal:
        """The operator behind a login cookie; idle and absolute timeouts end it (A5, A6). A page refreshing
        itself is not the operator's activity (``activity=False``): it does not keep the login alive."""
        if not secret:
            raise errors.AuthError("not logged in")
        id_sha256 = access.sha256(secret)
        login = await self.store.get_login(id_sha256)
        now = self.clock.now()
        if login is None or login.revoked_at is not None:
            raise errors.AuthError("not logged in")
        if now >= login.expires_at or now - login.last_seen_at >= timedelta(seconds=self.ui.session_idle):
            await self.store.end_login(
                id_sha256, now, [AuditEntry(actor=login.operator, action="login_expired", object="ui")]
            )
            raise errors.AuthError("the login has expired; log in again")
        operator = await self.store.get_operator(login.operator)
        if operator is None or operator.disabled_at is not None:
            raise errors.AuthError("not logged in")
        if activity:
            await self.store.touch_login(id_sha256, now, unless_after=now - _TOUCH_EVERY)
        return _principal(operator)

    async def session_alive(self, secret: str) -> bool:
        """Whether a login still stands, without counting as its activity (an open live stream)."""
        try:
            await self.session(secret, activity=False)
        except errors.AuthError:
            return False
        return True

    async def logout(self, secret: str, who: str) -> None:
        await self.store.end_login(
            access.sha256(secret), self.clock.now(), [AuditEntry(actor=who, action="logout", object="ui")]
        )

    # administration (CLI) ------------------------------------------------------------------------

    async def add_operator(self, name: str, roles: Iterable[str], password: str | None, *, actor: str) -> Operator:
        wanted = frozenset(roles)
        bad = access.unknown(wanted, access.ROLES)
        if bad or not wanted:
            raise errors.InvalidInput(f"roles must be some of: {', '.join(access.ROLES)}")
        now = self.clock.now()
        hashed = await self.passwords.run(access.hash_password, password, self.token_bytes(16)) if password else None
        operator = Operator(name=name, roles=wanted, created_at=now, password_hash=hashed)
        entry = AuditEntry(
            actor=actor, action="operator_added", object=f"operator:{name}", details={"roles": sorted(wanted)}
        )
        if not await self.store.add_operator(operator, entry):
            raise errors.Conflict(f"operator {name!r} exists")
        return operator

    async def create_key(
        self, operator_name: str, scopes: Iterable[str], days: int, *, actor: str
    ) -> tuple[ApiKey, str]:
        wanted = frozenset(scopes)
        bad = access.unknown(wanted, access.SCOPES)
        if bad or not wanted:
            raise errors.InvalidInput(f"scopes must be some of: {', '.join(access.SCOPES)}")
        if not 1 <= days <= self.ui.key_max_days:
            raise errors.InvalidInput(f"expiry must be 1 to {self.ui.key_max_days} days")
        operator = await self.store.get_operator(operator_name)
        if operator is None:
            raise errors.NotFound(f"no operator {operator_name!r}")
        beyond = wanted - access.role_scopes(operator.roles)
        if beyond:
            raise errors.Forbidden(f"operator {operator_name!r} may not hold: {', '.join(sorted(beyond))}")
        made = access.new_key(self.token_bytes(12), self.token_bytes(access.KEY_SECRET_BYTES))
        now = self.clock.now()
        key = ApiKey(
            id=made.key_id,
            operator=operator_name,
            prefix=f"{access.KEY_PREFIX}_{made.key_id}",
            scopes=wanted,
            created_at=now,
            expires_at=now + timedelta(days=days),
            secret_sha256=made.secret_sha256,
        )
        details = {"operator": operator_name, "scopes": sorted(wanted), "expires_at": key.expires_at.isoformat()}
        await self.store.add_key(
            key, AuditEntry(actor=actor, action="key_created", object=f"key:{key.id}", details=details)
        )
        return key, made.token

    async def revoke_key(self, key_id: str, *, actor: str) -> None:
        entry = AuditEntry(actor=actor, action="key_revoked", object=f"key:{key_id}")
        if not await self.store.revoke_key(key_id, self.clock.now(), entry):
            raise errors.NotFound(f"no active key {key_id!r}")


def _principal(operator: Operator) -> Principal:
    return Principal(name=operator.name, roles=operator.roles, scopes=access.role_scopes(operator.roles), via="session")
