"""Queue items: a review joined with its desk row (policy, claim, SLA clock, proposal).

Changes are compare-and-set on the item's version (and on the review's OPEN state for a decision), written
with their audit rows, timers and alerts in one transaction, and fenced when a job makes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from gateway.core import subject
from gateway.domain import errors
from gateway.domain.audit import AuditEntry
from gateway.domain.desk import Item, Order, QueueFilter, SlaState
from gateway.domain.model import JSON, Job, JobKind, ReviewState
from gateway.domain.ports import NewJob
from gateway.store import audit_sql, codec
from gateway.store.blind import BlindIndex
from gateway.store.codec import dumps, from_us, to_us
from gateway.store.db import Row, Tx
from gateway.store.sqlstore import SqlStore

_ITEM_COLUMNS = (
    "priority, escalated_to, approvals_needed, sla_state, claim_due_at, decide_due_at, expires_at,"
    " first_claimed_at, claimed_by, claimed_at, claim_expires_at, proposal, proposal_digest, proposed_by,"
    " proposed_claimer, proposed_at, subject"
)
_TIME_COLUMNS = frozenset(
    {"claim_due_at", "decide_due_at", "expires_at", "first_claimed_at", "claimed_at", "claim_expires_at", "proposed_at"}
)
_SELECT = (
    "SELECT r.id, r.run_id, r.flow, r.state, r.request, {payload}, r.decided_by, r.decided_at, r.created_at,"
    " r.updated_at, r.version, i.review_id AS tracked, i.version AS item_version, "
    + ", ".join(f"i.{c.strip()}" for c in _ITEM_COLUMNS.split(","))
    + " FROM reviews r LEFT JOIN review_items i ON i.review_id = r.id"
)
_NO_DUE = 2**62


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemChange:
    """One step on an item, taken whole or not at all."""

    review_id: str
    expected_version: int
    set: Mapping[str, Any] = field(default_factory=dict)  # review_items columns
    decide: tuple[JSON, str] | None = None  # (input, decided_by): OPEN -> DECIDED, and the resume is queued
    review_state: ReviewState | None = None  # OPEN -> this state (EXPIRED, CLOSED)
    approval: tuple[str, str] | None = None  # (operator, proposal digest)
    request: tuple[str, str, str, JSON, int] | None = None  # (key, operator, fingerprint, response, status)
    audit: Sequence[AuditEntry] = ()
    jobs: Sequence[NewJob] = ()
    finish_job: Job | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Replay:
    operator: str
    fingerprint: str
    response: JSON
    status: int


class QueueStore:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.db = store.db
        self.payloads = store.payloads
        self.blind = BlindIndex(store.payloads.sealer)

    # reading -------------------------------------------------------------------------------------

    async def get_item(self, review_id: str) -> Item | None:
        sql = _SELECT.format(payload="r.gathered, r.decision") + " WHERE r.id = ?"
        async with self.db.read() as tx:
            row = await tx.fetchone(sql, (review_id,))
            if row is None:
                return None
            approvals = await tx.fetchall(
                "SELECT operator FROM review_approvals WHERE review_id = ? AND proposal_digest = ? ORDER BY at",
                (review_id, row["proposal_digest"] or ""),
            )
            run = await tx.fetchone("SELECT status, template FROM runs WHERE id = ?", (row["run_id"],))
        item = self._item(
            row, approvals=tuple(a["operator"] for a in approvals), run_status=run["status"] if run else None
        )
        return replace(item, run_template=run["template"] if run else None)

    async def list_items(self, flt: QueueFilter, now: datetime) -> list[Item]:
        """A page of items without payloads (A13), filtered and ordered in SQL on indexed columns."""
        clauses, params = _filters(flt, now)
        if flt.search:
            found, more = self._search(flt.search, subjects=flt.search_subject)
            clauses.append(found)
            params += more
        if flt.order == Order.URGENT:
            order = "-COALESCE(i.priority, 0), COALESCE(i.decide_due_at, ?), r.id"
            params_order: list[Any] = [_NO_DUE]
            if flt.after:
                clauses.append(f"({order}) > (?, ?, ?)")
                params += [_NO_DUE, *_urgent_cursor(flt.after)]
        else:
            order, params_order = "r.id DESC", []
            if flt.after:
                clauses.append("r.id < ?")
                params.append(flt.after)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = _SELECT.format(payload="NULL AS gathered, NULL AS decision") + f"{where} ORDER BY {order} LIMIT ?"
        async with self.db.read() as tx:
            rows = await tx.fetchall(sql, (*params, *params_order, flt.limit))
        return [self._item(row) for row in rows]

    def _search(self, text: str, *, subjects: bool) -> tuple[str, list[Any]]:
        """A review, run or event id (the gateway's or the source's), or all the words of a subject."""
        text = text.strip()
        ids = (
            "r.id = ? OR r.run_id = ? OR r.run_id IN (SELECT id FROM runs WHERE event_id = ?"
            " OR event_id IN (SELECT id FROM events WHERE ce_id = ?))"
        )
        params: list[Any] = [text] * 4
        terms = subject.search_terms(text) if subjects else []
        if not terms:
            return f"({ids})", params
        lookups = [self.blind.lookups(term) for term in terms]
        words = " AND ".join(
            f"r.id IN (SELECT review_id FROM review_terms WHERE digest IN ({', '.join('?' * len(d))}))" for d in lookups
        )
        return f"({ids} OR ({words}))", params + [d for digests in lookups for d in digests]

    async def run_input(self, run_id: str) -> Any:
        async with self.db.read() as tx:
            row = await tx.fetchone("SELECT input FROM runs WHERE id = ?", (run_id,))
        return self.payloads.open("runs", run_id, "input", row["input"]) if row else None

    async def review_ids_for_run(self, run_id: str) -> list[tuple[str, str]]:
        """(review id, state) of every review of a run, oldest first."""
        async with self.db.read() as tx:
            rows = await tx.fetchall("SELECT id, state FROM reviews WHERE run_id = ? ORDER BY id", (run_id,))
        return [(row["id"], row["state"]) for row in rows]

    async def replay(self, review_id: str, key: str) -> Replay | None:
        async with self.db.read() as tx:
            row = await tx.fetchone(
                "SELECT operator, fingerprint, response, status FROM review_requests WHERE review_id = ? AND key = ?",
                (review_id, key),
            )
        if row is None:
            return None
        return Replay(
            operator=row["operator"],
            fingerprint=row["fingerprint"],
            response=json.loads(row["response"]),
            status=row["status"],
        )

    # writing -------------------------------------------------------------------------------------

    async def track(
        self,
        review_id: str,
        fields: Mapping[str, Any],
        *,
        audit: Sequence[AuditEntry],
        jobs: Sequence[NewJob],
        now: datetime,
    ) -> bool:
        """Give a review its desk row, timers and 'opened' record, once."""
        columns = ["review_id", *fields]
        values = [review_id, *(_column_value(name, value, self, review_id) for name, value in fields.items())]
        async with self.db.write() as tx:
            inserted = await tx.execute(
                f"INSERT INTO review_items ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                " ON CONFLICT (review_id) DO NOTHING",
                values,
            )
            if inserted:
                await index_subject(tx, self.blind, review_id, fields.get("subject"))
                await audit_sql.append(tx, audit, now)
                for job in jobs:
                    await self.store._upsert_job(tx, job, now)
        return bool(inserted)

    async def apply(self, change: ItemChange, now: datetime) -> bool:
        try:
            async with self.db.write() as tx:
                if change.finish_job is not None and not await self.store._finish_job(tx, change.finish_job, now):
                    raise _Lost
                if not await self._set(tx, change, now):
                    raise _Lost
                if change.decide is not None and not await self._decide(tx, change.review_id, *change.decide, now):
                    raise _Lost
                if change.review_state is not None and not await self._move(
                    tx, change.review_id, change.review_state, now
                ):
                    raise _Lost
                await self._extras(tx, change, now)
        except _Lost:
            return False
        return True

    async def reschedule(self, job: Job, due_at: datetime, now: datetime) -> bool:
        """Put a running timer job back in the queue for a later time (fenced)."""
        async with self.db.write() as tx:
            count = await tx.execute(
                "UPDATE jobs SET state = 'queued', due_at = ?, attempts = 0, rerun = 0, lease_owner = NULL,"
                " lease_expires_at = NULL, updated_at = ? WHERE id = ? AND fence = ?",
                (to_us(due_at), to_us(now), job.id, job.fence),
            )
        return bool(count == 1)

    async def _set(self, tx: Tx, change: ItemChange, now: datetime) -> bool:
        assignments = [f"{name} = ?" for name in change.set]
        values = [_column_value(name, value, self, change.review_id) for name, value in change.set.items()]
        count = await tx.execute(
            f"UPDATE review_items SET {', '.join([*assignments, 'version = version + 1'])}"
            " WHERE review_id = ? AND version = ?",
            (*values, change.review_id, change.expected_version),
        )
        return count == 1

    async def _decide(self, tx: Tx, review_id: str, decision: JSON, decided_by: str, now: datetime) -> bool:
        count = await tx.execute(
            "UPDATE reviews SET state = 'DECIDED', decision = ?, decided_by = ?, decided_at = ?,"
            " last_error = NULL, updated_at = ?, version = version + 1 WHERE id = ? AND state = 'OPEN'",
            (
                self.payloads.seal("reviews", review_id, "decision", decision),
                decided_by,
                to_us(now),
                to_us(now),
                review_id,
            ),
        )
        if count != 1:
            return False
        await self.store._upsert_job(tx, NewJob(kind=JobKind.RESUME_RUN, ref=review_id, due_at=now), now)
        return True

    async def _move(self, tx: Tx, review_id: str, state: ReviewState, now: datetime) -> bool:
        count = await tx.execute(
            "UPDATE reviews SET state = ?, updated_at = ?, version = version + 1 WHERE id = ? AND state = 'OPEN'",
            (state.value, to_us(now), review_id),
        )
        return count == 1

    async def _extras(self, tx: Tx, change: ItemChange, now: datetime) -> None:
        if change.approval is not None:
            operator, digest = change.approval
            await tx.execute(
                "INSERT INTO review_approvals (review_id, operator, proposal_digest, at) VALUES (?, ?, ?, ?)",
                (change.review_id, operator, digest, to_us(now)),
            )
        if change.request is not None:
            key, operator, fingerprint, response, status = change.request
            await tx.execute(
                "INSERT INTO review_requests (review_id, key, operator, fingerprint, response, status, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (change.review_id, key, operator, fingerprint, dumps(response), status, to_us(now)),
            )
        await audit_sql.append(tx, change.audit, now)
        for job in change.jobs:
            await self.store._upsert_job(tx, job, now)

    def _item(self, row: Row, *, approvals: tuple[str, ...] = (), run_status: str | None = None) -> Item:
        review = codec.review_from_row(row, self.payloads)
        review_id = review.id
        tracked = row["tracked"] is not None
        proposal = self.payloads.open("review_items", review_id, "proposal", row["proposal"]) if tracked else None
        return Item(
            review=review,
            run_status=run_status,
            priority=row["priority"] or 0,
            escalated_to=row["escalated_to"],
            approvals_needed=row["approvals_needed"] or 0,
            approvals=approvals,
            sla_state=SlaState(row["sla_state"] or SlaState.OK),
            claim_due_at=from_us(row["claim_due_at"]),
            decide_due_at=from_us(row["decide_due_at"]),
            expires_at=from_us(row["expires_at"]),
            first_claimed_at=from_us(row["first_claimed_at"]),
            claimed_by=row["claimed_by"],
            claimed_at=from_us(row["claimed_at"]),
            claim_expires_at=from_us(row["claim_expires_at"]),
            proposal=proposal,
            subject=self.payloads.open("review_items", review_id, "subject", row["subject"]) if tracked else None,
            proposal_digest=row["proposal_digest"],
            proposed_by=row["proposed_by"],
            proposed_claimer=row["proposed_claimer"],
            proposed_at=from_us(row["proposed_at"]),
            tracked=tracked,
            version=row["item_version"] or 0,
        )


async def index_subject(tx: Tx, index: BlindIndex, review_id: str, text: str | None) -> None:
    """Replace an item's search digests with those of ``text`` under the index's current key."""
    await tx.execute("DELETE FROM review_terms WHERE review_id = ?", (review_id,))
    rows = [(review_id, key_id, digest) for key_id, digest in index.rows(subject.index_terms(text or ""))]
    if rows:
        await tx.executemany("INSERT INTO review_terms (review_id, key_id, digest) VALUES (?, ?, ?)", rows)


def _column_value(name: str, value: Any, store: QueueStore, review_id: str) -> Any:
    if name in _TIME_COLUMNS:
        return to_us(value)
    if name in ("proposal", "subject"):
        return store.payloads.seal("review_items", review_id, name, value)
    if isinstance(value, SlaState):
        return value.value
    return value


def _filters(flt: QueueFilter, now: datetime) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if flt.state is not None:
        clauses.append("r.state = ?")
        params.append(flt.state.value)
    if flt.flow is not None:
        clauses.append("r.flow = ?")
        params.append(flt.flow)
    if flt.assignee == "none":
        clauses.append("(i.claimed_by IS NULL OR i.claim_expires_at <= ?)")
        params.append(to_us(now))
    elif flt.assignee is not None:
        clauses.append("i.claimed_by = ? AND i.claim_expires_at > ?")
        params += [flt.assignee, to_us(now)]
    if flt.older_than is not None:
        clauses.append("r.created_at <= ?")
        params.append(to_us(now - timedelta(seconds=flt.older_than)))
    if flt.sla_state is not None:
        clauses.append("COALESCE(i.sla_state, 'ok') = ?")
        params.append(flt.sla_state.value)
    return clauses, params


def urgent_cursor(item: Item) -> str:
    due = to_us(item.decide_due_at) if item.decide_due_at else _NO_DUE
    return f"{-item.priority}.{due}.{item.id}"


def _urgent_cursor(text: str) -> tuple[int, int, str]:
    try:
        priority, due, review_id = text.split(".", 2)
        parsed = int(priority), int(due), review_id
    except ValueError:
        raise errors.BadRequest("after is not a cursor this list gave out") from None
    if not all(-(2**63) <= number < 2**63 for number in parsed[:2]):  # a database integer is 64 bits
        raise errors.BadRequest("after is not a cursor this list gave out")
    return parsed


class _Lost(Exception):
    """The item or review moved underneath us; the transaction is rolled back."""
