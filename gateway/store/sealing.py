"""AES-256-GCM sealing of payload columns (RELIABILITY.md A10, A11).

Stored form: ``b"g1" + len(key_id) + key_id + nonce(12) + ciphertext||tag``. The associated data binds
the ciphertext to its row and column and to the key id, so a value copied to another row does not open.
Keys come from the environment or a file (never the database); ``random_bytes`` is injected.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"g1"
NONCE_BYTES = 12
KEY_BYTES = 32


class SealError(Exception):
    """A stored payload could not be opened (wrong row, unknown key, or tampered bytes)."""


@dataclass(frozen=True, slots=True)
class DataKey:
    id: str
    secret: bytes

    def __repr__(self) -> str:
        return f"DataKey(id={self.id!r}, secret='**********')"


def parse_data_key(text: str) -> DataKey:
    """``<key id>:<base64 of 32 bytes>``; raises ValueError with a message that never holds the key."""
    key_id, sep, encoded = text.strip().partition(":")
    if not sep or not key_id or len(key_id) > 32 or not key_id.replace("-", "").replace("_", "").isalnum():
        raise ValueError("a data key is '<key id>:<base64 of 32 random bytes>' (key id: letters, digits, - or _)")
    try:
        secret = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise ValueError(f"data key {key_id!r} is not valid base64") from None
    if len(secret) != KEY_BYTES:
        raise ValueError(f"data key {key_id!r} must decode to {KEY_BYTES} bytes")
    return DataKey(id=key_id, secret=secret)


def generate_data_key(key_id: str, random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    return f"{key_id}:{base64.b64encode(random_bytes(KEY_BYTES)).decode()}"


class AesGcmSealer:
    """Seals with the current key; opens with any known key (old keys stay readable until rotated out)."""

    def __init__(
        self,
        current: DataKey,
        others: Mapping[str, DataKey] | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.current = current
        self.keys = {**(others or {}), current.id: current}
        self._ciphers = {key.id: AESGCM(key.secret) for key in self.keys.values()}
        self._random = random_bytes

    def seal(self, aad: str, plaintext: bytes) -> bytes:
        key_id = self.current.id.encode()
        nonce = self._random(NONCE_BYTES)
        sealed = self._ciphers[self.current.id].encrypt(nonce, plaintext, _aad(aad, self.current.id))
        return MAGIC + bytes([len(key_id)]) + key_id + nonce + sealed

    def open(self, aad: str, stored: bytes) -> bytes:
        key_id, nonce, sealed = split(stored)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise SealError(f"payload sealed with unknown key {key_id!r}")
        try:
            return cipher.decrypt(nonce, sealed, _aad(aad, key_id))
        except InvalidTag:
            raise SealError("payload does not open: tampered, or moved from another row") from None

    def needs_reseal(self, stored: bytes) -> bool:
        return not is_sealed(stored) or split(stored)[0] != self.current.id


def is_sealed(stored: bytes) -> bool:
    return stored.startswith(MAGIC)


def split(stored: bytes) -> tuple[str, bytes, bytes]:
    if not is_sealed(stored) or len(stored) < 3:
        raise SealError("payload is not sealed")
    length = stored[2]
    key_id = stored[3 : 3 + length].decode("ascii", "replace")
    nonce = stored[3 + length : 3 + length + NONCE_BYTES]
    return key_id, nonce, stored[3 + length + NONCE_BYTES :]


def _aad(aad: str, key_id: str) -> bytes:
    return f"{aad}|{key_id}".encode()
