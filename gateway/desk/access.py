"""Who may do what: roles and scopes, API key format, password hashing, login and CSRF tokens. Pure.

API keys look like ``gw_<key id>_<secret>`` (32 random bytes); only SHA-256 of the secret is stored (A1).
Passwords are hashed with argon2id (scrypt hashes from before still verify, and are replaced at the next
login). Randomness is passed in as bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

REVIEWS_READ = "reviews:read"
REVIEWS_DECIDE = "reviews:decide"
RUNS_READ = "runs:read"
RUNS_RETRY = "runs:retry"
DELIVERIES_REPLAY = "deliveries:replay"
ADMIN = "admin"
SCOPES = (REVIEWS_READ, REVIEWS_DECIDE, RUNS_READ, RUNS_RETRY, DELIVERIES_REPLAY, ADMIN)

ROLES = ("viewer", "reviewer", "approver", "admin")
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "viewer": frozenset({REVIEWS_READ, RUNS_READ}),
    "reviewer": frozenset({REVIEWS_READ, REVIEWS_DECIDE, RUNS_READ}),
    "approver": frozenset({REVIEWS_READ, REVIEWS_DECIDE, RUNS_READ}),
    "admin": frozenset(SCOPES),
}
PAYLOAD_ROLES = frozenset({"reviewer", "approver", "admin"})  # may see what a flow gathered (A13)
APPROVER_ROLES = frozenset({"approver", "admin"})
CONFIG_TOKEN_ROLES = frozenset({"reviewer", "approver"})
CONFIG_TOKEN_SCOPES = frozenset(SCOPES) - {ADMIN}

KEY_PREFIX = "gw"
KEY_SECRET_BYTES = 32
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated operator, with what this credential may do."""

    name: str
    roles: frozenset[str]
    scopes: frozenset[str]
    via: str  # "key", "token" (config operator token) or "session"
    key_id: str | None = None

    def may(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN in self.scopes

    @property
    def sees_payload(self) -> bool:
        return bool(self.roles & PAYLOAD_ROLES)

    @property
    def approves(self) -> bool:
        return bool(self.roles & APPROVER_ROLES)


def role_scopes(roles: Iterable[str]) -> frozenset[str]:
    out: set[str] = set()
    for role in roles:
        out |= ROLE_SCOPES.get(role, frozenset())
    return frozenset(out)


def unknown(values: Iterable[str], known: Iterable[str]) -> list[str]:
    allowed = set(known)
    return [v for v in values if v not in allowed]


# API keys --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NewKey:
    key_id: str
    token: str  # shown once
    secret_sha256: bytes


def new_key(id_bytes: bytes, secret_bytes: bytes) -> NewKey:
    key_id = "".join(_ID_ALPHABET[b % 32] for b in id_bytes[:12])
    secret = base64.urlsafe_b64encode(secret_bytes).decode().rstrip("=")
    return NewKey(key_id=key_id, token=f"{KEY_PREFIX}_{key_id}_{secret}", secret_sha256=sha256(secret))


def parse_key(token: str) -> tuple[str, bytes] | None:
    """(key id, SHA-256 of the secret) for a token of our format, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1], sha256(parts[2])


def sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


# passwords -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordCost:
    """argon2id parameters; the default is OWASP's (Password Storage Cheat Sheet): 19 MiB, 2 passes, 1 lane."""

    time_cost: int = 2
    memory_kib: int = 19_456
    parallelism: int = 1


OWASP_COST = PasswordCost()


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    ok: bool
    outdated: bool = False  # right, but hashed with scrypt or weaker argon2 parameters: store a new hash


def hash_password(password: str, salt: bytes, *, cost: PasswordCost = OWASP_COST) -> str:
    return _hasher(cost).hash(password, salt=salt)


def check_password(password: str, stored: str | None, *, cost: PasswordCost = OWASP_COST) -> PasswordCheck:
    """Check against an argon2id hash, or a scrypt hash from before argon2 (always ``outdated``)."""
    if not stored:
        return PasswordCheck(ok=False)
    if stored.startswith("scrypt$"):
        return PasswordCheck(ok=_scrypt_ok(password, stored), outdated=True)
    hasher = _hasher(cost)
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return PasswordCheck(ok=False)
    return PasswordCheck(ok=True, outdated=hasher.check_needs_rehash(stored))


def _hasher(cost: PasswordCost) -> PasswordHasher:
    return PasswordHasher(
        time_cost=cost.time_cost, memory_cost=cost.memory_kib, parallelism=cost.parallelism, type=Type.ID
    )


def _scrypt_ok(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, expected = stored.split("$")
        Scrypt(salt=_unb64(salt), length=32, n=int(n), r=int(r), p=int(p)).verify(password.encode(), _unb64(expected))
    except (ValueError, InvalidKey):
        return False
    return True


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# UI logins -------------------------------------------------------------------------------------------


def session_token(random_bytes: bytes) -> str:
    return base64.urlsafe_b64encode(random_bytes).decode().rstrip("=")


def csrf_token(session: str) -> str:
    """The CSRF token is derived from the login's secret id: bound to it, never stored."""
    return hmac.new(session.encode(), b"gateway-csrf-v1", hashlib.sha256).hexdigest()


def csrf_ok(session: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(csrf_token(session), presented)
