"""Conversions between rows and domain objects, and the sealer that guards payload columns."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway.core import fastjson
from gateway.domain.model import (
    Delivery,
    DeliveryState,
    Job,
    JobKind,
    JobState,
    PendingInput,
    Review,
    ReviewState,
    Run,
    RunStatus,
    Transition,
)
from gateway.store.db import Row


class Sealer(Protocol):
    """Turns payload bytes into what is stored, bound to the row it belongs to (``aad``)."""

    def seal(self, aad: str, plaintext: bytes) -> bytes: ...

    def open(self, aad: str, stored: bytes) -> bytes: ...


class PlainSealer:
    """Stores payloads as they are (used until an encryption key is configured)."""

    def seal(self, aad: str, plaintext: bytes) -> bytes:
        return plaintext

    def open(self, aad: str, stored: bytes) -> bytes:
        return stored


def to_us(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1_000_000)


def from_us(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1_000_000, UTC)


def need_dt(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, UTC)


def dumps(value: Any) -> str:
    return fastjson.dumps(value, sort_keys=True).decode()


def pending_to_text(pending: PendingInput | None) -> str | None:
    return None if pending is None else dumps(pending.as_dict())


def pending_from_text(text: str | None) -> PendingInput | None:
    if not text:
        return None
    data = json.loads(text)
    return PendingInput(**data)


class Payloads:
    """Seals and opens the JSON payload columns with the row identity as associated data."""

    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer

    def seal(self, table: str, row_id: str, column: str, value: Any) -> bytes | None:
        if value is None:
            return None
        return self.sealer.seal(f"{table}/{row_id}/{column}", fastjson.dumps(value, sort_keys=True))

    def open(self, table: str, row_id: str, column: str, stored: bytes | None) -> Any:
        if stored is None:
            return None
        return fastjson.loads(self.sealer.open(f"{table}/{row_id}/{column}", bytes(stored)))


def run_from_row(row: Row, payloads: Payloads) -> Run:
    run_id = row["id"]
    return Run(
        id=run_id,
        event_id=row["event_id"],
        route=row["route"],
        flow=row["flow"],
        provider=row["provider"],
        template=row["template"],
        status=RunStatus(row["status"]),
        idempotency_key=row["idempotency_key"],
        created_at=need_dt(row["created_at"]),
        updated_at=need_dt(row["updated_at"]),
        provider_run_id=row["provider_run_id"],
        provider_status=row["provider_status"],
        input=payloads.open("runs", run_id, "input", row["input"]),
        output=payloads.open("runs", run_id, "output", row["output"]),
        error=payloads.open("runs", run_id, "error", row["error"]),
        pending=pending_from_text(row["pending"]),
        finished_at=from_us(row["finished_at"]),
        last_news_at=from_us(row["last_news_at"]),
        version=row["version"],
        traceparent=row["traceparent"],
    )


def transition_from_row(row: Row) -> Transition:
    return Transition(
        run_id=row["run_id"],
        at=need_dt(row["at"]),
        from_status=RunStatus(row["from_status"]) if row["from_status"] else None,
        to_status=RunStatus(row["to_status"]),
        cause=row["cause"],
        detail=row["detail"],
    )


def review_from_row(row: Row, payloads: Payloads) -> Review:
    review_id = row["id"]
    request = pending_from_text(row["request"]) or PendingInput()
    return Review(
        id=review_id,
        run_id=row["run_id"],
        flow=row["flow"],
        state=ReviewState(row["state"]),
        request=request,
        created_at=need_dt(row["created_at"]),
        updated_at=need_dt(row["updated_at"]),
        gathered=payloads.open("reviews", review_id, "gathered", row["gathered"]),
        decision=payloads.open("reviews", review_id, "decision", row["decision"]),
        decided_by=row["decided_by"],
        decided_at=from_us(row["decided_at"]),
        version=row["version"],
    )


def delivery_from_row(row: Row) -> Delivery:
    return Delivery(
        id=row["id"],
        run_id=row["run_id"],
        sink=row["sink"],
        state=DeliveryState(row["state"]),
        created_at=need_dt(row["created_at"]),
        updated_at=need_dt(row["updated_at"]),
        attempts=row["attempts"],
        next_attempt_at=from_us(row["next_attempt_at"]),
        last_error=row["last_error"],
        last_status_code=row["last_status_code"],
        delivered_at=from_us(row["delivered_at"]),
    )


def job_from_row(row: Row) -> Job:
    return Job(
        id=row["id"],
        kind=JobKind(row["kind"]),
        ref=row["ref"],
        state=JobState(row["state"]),
        due_at=need_dt(row["due_at"]),
        attempts=row["attempts"],
        fence=row["fence"],
        data=json.loads(row["data"] or "{}"),
        last_error=row["last_error"],
        lease_owner=row["lease_owner"],
        lease_expires_at=from_us(row["lease_expires_at"]),
    )
