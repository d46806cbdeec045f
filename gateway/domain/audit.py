"""The audit trail's hash chain: ``hash = sha256(prev_hash + canonical row)``. Pure.

Rows name who did what to which object and when; details never carry payload content (inputs appear
as a digest). Editing, deleting or reordering any row breaks every link after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """What is appended; the store gives it a sequence number and its place in the chain."""

    actor: str
    action: str
    object: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    seq: int
    at_us: int  # microseconds since the epoch, exactly as hashed
    actor: str
    action: str
    object: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    @property
    def at(self) -> datetime:
        return from_us(self.at_us)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "at_us": self.at_us,
            "actor": self.actor,
            "action": self.action,
            "object": self.object,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def canonical(seq: int, at_us: int, entry: AuditEntry) -> str:
    body = {
        "seq": seq,
        "at": at_us,
        "actor": entry.actor,
        "action": entry.action,
        "object": entry.object,
        "details": entry.details,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=True)


def link(prev_hash: str, seq: int, at_us: int, entry: AuditEntry) -> str:
    return hashlib.sha256((prev_hash + canonical(seq, at_us, entry)).encode()).hexdigest()


def digest(value: Any) -> str:
    """A stable fingerprint of an input, kept in place of the input itself."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    checked: int
    broken_at: int | None = None  # the sequence number of the first row that does not fit
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify(records: Iterable[AuditRecord]) -> Verdict:
    """Walk the chain from the start; name the first row whose link or content does not verify."""
    prev = GENESIS
    expected_seq = 1
    checked = 0
    for record in records:
        if record.seq != expected_seq:
            return Verdict(checked=checked, broken_at=record.seq, reason=f"expected seq {expected_seq}")
        if record.prev_hash != prev:
            return Verdict(checked=checked, broken_at=record.seq, reason="prev_hash does not match the row before")
        entry = AuditEntry(actor=record.actor, action=record.action, object=record.object, details=record.details)
        if link(prev, record.seq, record.at_us, entry) != record.hash:
            return Verdict(checked=checked, broken_at=record.seq, reason="row content does not match its hash")
        prev = record.hash
        expected_seq += 1
        checked += 1
    return Verdict(checked=checked)


def to_us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, UTC)
