"""JSON shapes of queue items. Summaries carry ids, flow, state, age, due time and (for roles that see payloads)
the subject line; the payload itself needs ``detail``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.domain.audit import AuditRecord
from gateway.domain.desk import Item, SlaState
from gateway.domain.model import ReviewState


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def summary(item: Item, now: datetime, *, payload: bool = False) -> dict[str, Any]:
    review = item.review
    due = next_due(item)
    return {
        "id": review.id,
        "run_id": review.run_id,
        "flow": review.flow,
        "subject": item.subject if payload else None,
        "state": review.state.value,
        "waiting_in": review.request.key,
        "age_seconds": max(0, int((now - review.created_at).total_seconds())),
        "created_at": _time(review.created_at),
        "priority": item.priority,
        "escalated_to": item.escalated_to,
        "sla_state": item.sla_state.value,
        "claim_due_at": _time(item.claim_due_at),
        "decide_due_at": _time(item.decide_due_at),
        "expires_at": _time(item.expires_at),
        "due": {"kind": due[0], "at": _time(due[1])} if due else None,
        "claimed_by": item.holder(now),
        "claim_expires_at": _time(item.claim_expires_at) if item.holder(now) else None,
        "approvals_needed": item.approvals_needed,
        "awaiting_approval": item.proposal_digest is not None and item.is_open,
        "decided_by": review.decided_by,
        "decided_at": _time(review.decided_at),
    }


def next_due(item: Item) -> tuple[str, datetime] | None:
    """What an open item must next meet: its claim-by time until first claimed, then decide-by, then expiry."""
    if not item.is_open:
        return None
    if item.first_claimed_at is None and item.claim_due_at is not None:
        return "claim", item.claim_due_at
    if item.decide_due_at is not None:
        return "decide", item.decide_due_at
    if item.expires_at is not None:
        return "expires", item.expires_at
    return None


def sla_outcome(item: Item) -> dict[str, Any] | None:
    """How a closed item ended against its SLA: met or breached, and how long the decision took."""
    review = item.review
    if item.is_open:
        return None
    decided = review.state in (ReviewState.DECIDED, ReviewState.RESUMED) and review.decided_at is not None
    took = (review.decided_at - review.created_at).total_seconds() if decided and review.decided_at else None
    return {
        "outcome": "breached" if item.sla_state == SlaState.BREACHED else ("met" if decided else "no decision"),
        "decided_in_seconds": None if took is None else max(0, int(took)),
        "state": review.state.value,
    }


def detail(item: Item, now: datetime, *, payload: bool) -> dict[str, Any]:
    out = {
        **summary(item, now, payload=payload),
        "sla_outcome": sla_outcome(item),
        "run_status": item.run_status,
        "template": item.run_template,
        "asks_for": item.review.request.as_dict(),
        "proposal_digest": item.proposal_digest,
        "proposed_by": item.proposed_by,
        "approvals": list(item.approvals),
        "approved_by": list(item.approvals) if review_approved(item) else [],
    }
    if payload:
        out["gathered"] = item.review.gathered
        out["decision"] = item.review.decision
        out["proposal"] = item.proposal
    return out


def review_approved(item: Item) -> bool:
    """A four-eyes item whose proposal was approved and became the decision."""
    return not item.is_open and item.approvals_needed > 0 and item.review.decided_by is not None


def audit_record(record: AuditRecord) -> dict[str, Any]:
    return record.as_dict()
