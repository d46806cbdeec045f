"""Standard Webhooks (and Svix) signatures over raw body bytes, plus GitHub's ``sha256=`` form.

Signed content is ``f"{id}.{timestamp}.".encode() + body``; the body is never decoded. ``v1`` entries are
HMAC-SHA256 with a ``whsec_`` secret, ``v1a`` entries are Ed25519 with ``whsk_``/``whpk_`` keys. The signature
header is a space-separated list so that several keys can sign during a rotation.
Pure: the clock is passed in.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from gateway.domain.errors import SignatureError

HMAC_PREFIX = "whsec_"
PUBLIC_KEY_PREFIX = "whpk_"
PRIVATE_KEY_PREFIX = "whsk_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
ED25519_KEY_BYTES = 32
ED25519_SIGNATURE_BYTES = 64

_MSG_ID = re.compile(r"[\x21-\x2d\x2f-\x7e]{1,256}")  # visible ASCII except "."
_TIMESTAMP = re.compile(r"[0-9]{1,10}")
_MAX_TIMESTAMP = 9_999_999_999


class SignatureScheme(enum.StrEnum):
    """The version tag in front of each signature entry."""

    V1 = "v1"
    V1A = "v1a"


@dataclass(frozen=True, slots=True, kw_only=True)
class HmacKey:
    """A symmetric ``whsec_`` key: signs and verifies ``v1`` entries."""

    secret: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ed25519VerifyKey:
    """A ``whpk_`` public key: verifies ``v1a`` entries."""

    key: ed25519.Ed25519PublicKey = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ed25519SigningKey:
    """A ``whsk_`` private key: signs ``v1a`` entries."""

    key: ed25519.Ed25519PrivateKey = field(repr=False)


VerifyKey: TypeAlias = HmacKey | Ed25519VerifyKey
SigningKey: TypeAlias = HmacKey | Ed25519SigningKey


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedMessage:
    """The id and timestamp of a message whose signature verified."""

    id: str
    timestamp: int


@dataclass(frozen=True, slots=True, kw_only=True)
class _Entry:
    version: str
    signature: bytes


def parse_verify_key(secret: str) -> VerifyKey:
    """Parse ``whsec_<base64>`` or ``whpk_<base64>``; the ValueError raised never holds the secret."""
    if secret.startswith(HMAC_PREFIX):
        return _parse_hmac_key(secret)
    if secret.startswith(PUBLIC_KEY_PREFIX):
        raw = _decode_key(secret[len(PUBLIC_KEY_PREFIX) :], PUBLIC_KEY_PREFIX)
        return Ed25519VerifyKey(key=ed25519.Ed25519PublicKey.from_public_bytes(_ed25519_bytes(raw)))
    raise ValueError(f"a verify key must start with {HMAC_PREFIX!r} or {PUBLIC_KEY_PREFIX!r}")


def parse_signing_key(secret: str) -> SigningKey:
    """Parse ``whsec_<base64>`` or ``whsk_<base64>``; the ValueError raised never holds the secret."""
    if secret.startswith(HMAC_PREFIX):
        return _parse_hmac_key(secret)
    if secret.startswith(PRIVATE_KEY_PREFIX):
        raw = _decode_key(secret[len(PRIVATE_KEY_PREFIX) :], PRIVATE_KEY_PREFIX)
        return Ed25519SigningKey(key=ed25519.Ed25519PrivateKey.from_private_bytes(_ed25519_bytes(raw)))
    raise ValueError(f"a signing key must start with {HMAC_PREFIX!r} or {PRIVATE_KEY_PREFIX!r}")


def key_identity(key: VerifyKey) -> tuple[str, bytes]:
    """A comparable identity of a verify key (to spot one secret configured twice); never logged."""
    if isinstance(key, HmacKey):
        return (SignatureScheme.V1, key.secret)
    return (SignatureScheme.V1A, key.key.public_bytes_raw())


def generate_secret(random_bytes: bytes) -> str:
    """Return ``whsec_`` + base64 of ``random_bytes`` (24 to 64 bytes, drawn by the caller)."""
    _check_secret_length(random_bytes)
    return HMAC_PREFIX + base64.b64encode(random_bytes).decode()


def sign(key: SigningKey, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<b64>`` or ``v1a,<b64>`` entry; ValueError for an id or timestamp it cannot use."""
    content = _signed_content(msg_id, timestamp, body)
    if isinstance(key, HmacKey):
        return f"{SignatureScheme.V1},{_b64(_hmac(key, content))}"
    return f"{SignatureScheme.V1A},{_b64(key.key.sign(content))}"


def sign_headers(
    key: SigningKey | Sequence[SigningKey], msg_id: str, timestamp: int, body: bytes, *, prefix: str = "webhook"
) -> dict[str, str]:
    """The three headers of a signed message, named ``<prefix>-id``, ``-timestamp`` and ``-signature``.

    Several keys give one signature each, space-separated (``v1,sigA v1,sigB``): a receiver that knows
    either secret accepts the message, so secrets rotate without downtime."""
    keys = key if isinstance(key, Sequence) else (key,)
    return {
        f"{prefix}-id": msg_id,
        f"{prefix}-timestamp": str(timestamp),
        f"{prefix}-signature": " ".join(sign(each, msg_id, timestamp, body) for each in keys),
    }


def verify(
    body: bytes,
    headers: Mapping[str, str],
    keys: Sequence[VerifyKey],
    *,
    now: datetime,
    tolerance: int = 300,
) -> VerifiedMessage:
    """Check a message signed by any of ``keys``; accepts ``webhook-*`` or ``svix-*`` headers.

    Raises SignatureError with ``malformed=True`` for missing or malformed headers, and without it for a
    timestamp more than ``tolerance`` seconds from ``now`` or a signature that matches no key.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    msg_id, raw_timestamp, raw_signatures = _read_headers(headers)
    if not _MSG_ID.fullmatch(msg_id):
        raise SignatureError("malformed message id", malformed=True)
    if not _TIMESTAMP.fullmatch(raw_timestamp):
        raise SignatureError("malformed message timestamp", malformed=True)
    entries = _parse_entries(raw_signatures)
    if not entries:
        raise SignatureError("no usable signature entry", malformed=True)
    timestamp = int(raw_timestamp)
    if abs(now.timestamp() - timestamp) > tolerance:
        raise SignatureError("message timestamp outside the tolerance window")
    content = _signed_content(msg_id, timestamp, body)
    if not any(_matches(key, entries, content) for key in keys):
        raise SignatureError("no matching signature")
    return VerifiedMessage(id=msg_id, timestamp=timestamp)


def github_signature(secret: bytes, body: bytes) -> str:
    """GitHub's ``X-Hub-Signature-256`` value: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _read_headers(headers: Mapping[str, str]) -> tuple[str, str, str]:
    lowered = {str(name).lower(): value for name, value in headers.items()}
    prefix = "svix" if "svix-id" in lowered else "webhook"
    values = (lowered.get(f"{prefix}-{part}") for part in ("id", "timestamp", "signature"))
    msg_id, timestamp, signatures = (value if isinstance(value, str) else "" for value in values)
    if not (msg_id and timestamp and signatures):
        raise SignatureError("missing signature headers", malformed=True)
    return msg_id, timestamp, signatures


def _parse_entries(header: str) -> list[_Entry]:
    entries = []
    for item in header.split(" "):
        version, _, encoded = item.partition(",")
        signature = _b64decode_or_none(encoded)  # empty (so skipped) without a comma
        if signature:
            entries.append(_Entry(version=version, signature=signature))
    return entries


def _matches(key: VerifyKey, entries: Sequence[_Entry], content: bytes) -> bool:
    if isinstance(key, HmacKey):
        expected = _hmac(key, content)
        return any(
            hmac.compare_digest(expected, entry.signature) for entry in entries if entry.version == SignatureScheme.V1
        )
    return any(
        _ed25519_valid(key, entry.signature, content) for entry in entries if entry.version == SignatureScheme.V1A
    )


def _ed25519_valid(key: Ed25519VerifyKey, signature: bytes, content: bytes) -> bool:
    if len(signature) != ED25519_SIGNATURE_BYTES:
        return False
    try:
        key.key.verify(signature, content)
    except InvalidSignature:
        return False
    return True


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    if not _MSG_ID.fullmatch(msg_id):
        raise ValueError("message id must be 1 to 256 visible ASCII characters without '.'")
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise ValueError("timestamp must be a non-negative integer of at most 10 digits")
    return f"{msg_id}.{timestamp}.".encode() + body


def _hmac(key: HmacKey, content: bytes) -> bytes:
    return hmac.new(key.secret, content, hashlib.sha256).digest()


def _parse_hmac_key(secret: str) -> HmacKey:
    raw = _decode_key(secret[len(HMAC_PREFIX) :], HMAC_PREFIX)
    _check_secret_length(raw)
    return HmacKey(secret=raw)


def _decode_key(encoded: str, prefix: str) -> bytes:
    raw = _b64decode_or_none(encoded + "=" * (-len(encoded) % 4))
    if raw is None:
        raise ValueError(f"the part after {prefix!r} is not valid base64")
    return raw


def _check_secret_length(raw: bytes) -> None:
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise ValueError(f"a secret must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, got {len(raw)}")


def _ed25519_bytes(raw: bytes) -> bytes:
    if len(raw) != ED25519_KEY_BYTES:
        raise ValueError(f"an Ed25519 key must be {ED25519_KEY_BYTES} bytes, got {len(raw)}")
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _b64decode_or_none(encoded: str) -> bytes | None:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
