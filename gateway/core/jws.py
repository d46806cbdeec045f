"""Detached JWS with RS256 only, as TransactionLink signs its webhooks (``JWS-SIGNATURE`` header).

A detached JWS is the compact form ``<header>..<signature>`` with the payload left out (RFC 7515 App. F):
the verifier re-inserts ``base64url(raw body)``. RFC 7797 (``"b64": false``) instead signs the raw body
bytes. Which one TransactionLink uses is not documented (PROVIDERS.md §2.5 [U]), so ``PayloadMode`` picks:
``encoded`` (App. F only), ``unencoded`` (the raw body only) or ``either`` (the header's ``b64`` decides;
without it both are tried). Only ``RS256`` is accepted: ``none``, ``HS256`` and every other ``alg`` are refused
before any key is looked at, so a header can never choose the algorithm (algorithm confusion).

Uses ``cryptography`` directly: the checks are a dozen lines, and a JOSE library would add a dependency whose
defaults (algorithm lists, b64 handling) we would have to pin anyway. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from gateway.domain import errors

ALGORITHM = "RS256"
MIN_KEY_BITS = 2048
MAX_HEADER_CHARS = 16 * 1024
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_KID = re.compile(r"[A-Za-z0-9._~:-]{1,128}")
_UNDERSTOOD_CRIT = frozenset({"b64"})


class PayloadMode(enum.StrEnum):
    ENCODED = "encoded"
    UNENCODED = "unencoded"
    EITHER = "either"


@dataclass(frozen=True, slots=True, kw_only=True)
class Detached:
    header: dict[str, Any]
    header_b64: str
    payload_b64: str
    signature: bytes

    @property
    def kid(self) -> str:
        return str(self.header["kid"])

    @property
    def declares_unencoded(self) -> bool:
        return self.header.get("b64") is False


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url. Its text is ASCII, which the default codec (UTF-8) encodes byte for byte."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding; raises ValueError."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    # Only the alphabet, and never one character over a quantum: with its padding restored this decodes.
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse(value: str | None) -> Detached:
    """The parts of a compact JWS header value. Raises SignatureError (malformed, or a refused ``alg``)."""
    if not value or len(value) > MAX_HEADER_CHARS:
        raise errors.SignatureError("missing or oversized JWS-SIGNATURE header", malformed=True)
    parts = value.strip().split(".")
    if len(parts) != 3:
        raise errors.SignatureError("JWS-SIGNATURE is not a compact JWS", malformed=True)
    header_b64, payload_b64, signature_b64 = parts
    try:
        header = json.loads(b64url_decode(header_b64))
        signature = b64url_decode(signature_b64)
        b64url_decode(payload_b64)
    except (ValueError, UnicodeDecodeError):
        raise errors.SignatureError("JWS-SIGNATURE is not valid base64url JSON", malformed=True) from None
    if not isinstance(header, dict):
        raise errors.SignatureError("the JWS header is not a JSON object", malformed=True)
    _check_header(header)
    return Detached(header=header, header_b64=header_b64, payload_b64=payload_b64, signature=signature)


def _check_header(header: dict[str, Any]) -> None:
    if header.get("alg") != ALGORITHM:
        raise errors.SignatureError("JWS algorithm not accepted (only RS256)")
    kid = header.get("kid")
    if not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise errors.SignatureError("the JWS header has no usable kid", malformed=True)
    crit = header.get("crit", [])
    if not isinstance(crit, list) or not all(isinstance(name, str) for name in crit):
        raise errors.SignatureError("the JWS crit header is malformed", malformed=True)
    if set(crit) - _UNDERSTOOD_CRIT:
        raise errors.SignatureError("the JWS header needs extensions we do not support")
    if "b64" in header and not isinstance(header["b64"], bool):
        raise errors.SignatureError("the JWS b64 header is not a boolean", malformed=True)


def signing_inputs(detached: Detached, body: bytes, mode: PayloadMode) -> list[bytes]:
    """The byte strings the signature may cover, in the order they are tried."""
    encoded = f"{detached.header_b64}.{b64url_encode(body)}".encode()
    unencoded = detached.header_b64.encode() + b"." + body
    if mode is PayloadMode.ENCODED:
        if detached.declares_unencoded:
            raise errors.SignatureError("unencoded (b64:false) JWS payloads are not accepted")
        return [encoded]
    if mode is PayloadMode.UNENCODED or detached.declares_unencoded:
        return [unencoded]
    return [encoded, unencoded]


def verify(detached: Detached, key: rsa.RSAPublicKey, body: bytes, mode: PayloadMode) -> None:
    """Raise SignatureError unless the signature covers ``body`` under ``key``."""
    if detached.payload_b64 and detached.payload_b64 != b64url_encode(body):
        raise errors.SignatureError("the JWS payload is not the request body")
    if key.key_size < MIN_KEY_BITS:
        raise errors.SignatureError("the signing key is too short")
    for data in signing_inputs(detached, body, mode):
        try:
            key.verify(detached.signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return
    raise errors.SignatureError("JWS signature does not verify")


def sign(key: rsa.RSAPrivateKey, kid: str, body: bytes, *, unencoded: bool = False) -> str:
    """A detached RS256 JWS over ``body`` (used by the sandbox and tests)."""
    header: dict[str, Any] = {"alg": ALGORITHM, "kid": kid, "typ": "JWT"}
    if unencoded:
        header.update({"b64": False, "crit": ["b64"]})
    header_b64 = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
    payload = body if unencoded else b64url_encode(body).encode()
    signature = key.sign(header_b64.encode() + b"." + payload, padding.PKCS1v15(), hashes.SHA256())
    return f"{header_b64}..{b64url_encode(signature)}"


def load_public_key(text: bytes) -> rsa.RSAPublicKey:
    """An RSA public key from PEM, or from bare base64 DER (the key endpoint's ``pem=false``). ValueError else."""
    stripped = text.strip()
    if stripped.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(stripped)
    else:
        try:
            der = base64.b64decode(b"".join(stripped.split()), validate=True)
        except binascii.Error:
            raise ValueError("not a PEM or base64 DER public key") from None
        key = serialization.load_der_public_key(der)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key
