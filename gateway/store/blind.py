"""Blind index for subject search: keyed HMACs of the subject's words, so a search never needs plaintext.

Subjects are sealed like every payload column; beside them ``review_terms`` holds, per item, the HMAC-SHA-256
(truncated to 16 bytes) of each word and word prefix (see ``gateway.core.subject.index_terms``), under a key
derived from the data key. A search hashes its own words the same way and looks them up; the database sees
only digests. What it can still tell is which items share a word. Each digest row names the data key it was
made under, so a search after a key rotation hashes under every known key until ``keys rotate-data`` has
re-indexed the old items.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from gateway.store.codec import Sealer
from gateway.store.sealing import AesGcmSealer

_LABEL = b"gateway subject index v1"
PLAIN_KEY_ID = "plain"
DIGEST_BYTES = 16


class BlindIndex:
    def __init__(self, sealer: Sealer) -> None:
        if isinstance(sealer, AesGcmSealer):
            self.current = sealer.current.id
            self.keys = {key.id: hmac.new(key.secret, _LABEL, hashlib.sha256).digest() for key in sealer.keys.values()}
        else:  # no data key (demo): payloads are stored plain, so the index needs no secret either
            self.current = PLAIN_KEY_ID
            self.keys = {PLAIN_KEY_ID: _LABEL}

    def digest(self, term: str, key_id: str | None = None) -> str:
        key = self.keys[key_id or self.current]
        return hmac.new(key, term.encode(), hashlib.sha256).digest()[:DIGEST_BYTES].hex()

    def rows(self, terms: Iterable[str]) -> list[tuple[str, str]]:
        """(key id, digest) of each term under the current key: what is stored."""
        return [(self.current, self.digest(term)) for term in sorted(set(terms))]

    def lookups(self, term: str) -> list[str]:
        """The digests a stored term may have, one per known key: what a search looks for."""
        return [self.digest(term, key_id) for key_id in sorted(self.keys)]
