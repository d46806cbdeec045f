"""JSON shapes of queue items. Summaries carry ids, flow, state and age only; the payload needs ``detail``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.desk.audit import AuditRecord
from gateway.desk.model import Item


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def summary(item: Item, now: datetime) -> dict[str, Any]:
    review = item.review
    return {
        "id": review.id,
        "run_id": review.run_id,
        "flow": review.flow,
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
        "claimed_by": item.holder(now),
        "claim_expires_at": _time(item.claim_expires_at) if item.holder(now) else None,
        "approvals_needed": item.approvals_needed,
        "awaiting_approval": item.proposal_digest is not None and item.is_open,
        "decided_by": review.decided_by,
        "decided_at": _time(review.decided_at),
    }


def detail(item: Item, now: datetime, *, payload: bool) -> dict[str, Any]:
    out = {
        **summary(item, now),
        "run_status": item.run_status,
        "template": item.run_template,
        "asks_for": item.review.request.as_dict(),
        "proposal_digest": item.proposal_digest,
        "proposed_by": item.proposed_by,
        "approvals": list(item.approvals),
    }
    if payload:
        out["gathered"] = item.review.gathered
        out["decision"] = item.review.decision
        out["proposal"] = item.proposal
    return out


def audit_record(record: AuditRecord) -> dict[str, Any]:
    return record.as_dict()
