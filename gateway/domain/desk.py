"""Desk objects: operators, API keys, UI logins, queue items and queue filters. No I/O here."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from gateway.domain.model import JSON, Review, ReviewState


class SlaState(enum.StrEnum):
    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"


SLA_ORDER = {SlaState.OK: 0, SlaState.WARNING: 1, SlaState.BREACHED: 2}


class Order(enum.StrEnum):
    NEWEST = "newest"
    URGENT = "urgent"


@dataclass(frozen=True, slots=True, kw_only=True)
class Operator:
    name: str
    roles: frozenset[str]
    created_at: datetime
    password_hash: str | None = None
    disabled_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    id: str
    operator: str
    prefix: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    secret_sha256: bytes = b""

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True, kw_only=True)
class Login:
    """A server-side UI login; the browser holds only its secret id."""

    operator: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """A review as the queue sees it: the review plus its policy, claim, SLA clock and pending proposal."""

    review: Review
    run_status: str | None = None
    run_template: str | None = None
    priority: int = 0
    escalated_to: str | None = None
    approvals_needed: int = 0
    approvals: tuple[str, ...] = ()
    sla_state: SlaState = SlaState.OK
    claim_due_at: datetime | None = None
    decide_due_at: datetime | None = None
    expires_at: datetime | None = None
    first_claimed_at: datetime | None = None
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    claim_expires_at: datetime | None = None
    proposal: JSON | None = None
    proposal_digest: str | None = None
    proposed_by: str | None = None
    proposed_claimer: str | None = None
    proposed_at: datetime | None = None
    subject: str | None = None  # the flow's subject line for this item (a payload: see QueueFilter.search)
    tracked: bool = False  # False until the item's policy has been applied
    version: int = 0  # the desk row's version, for compare-and-set

    @property
    def id(self) -> str:
        return self.review.id

    @property
    def is_open(self) -> bool:
        return self.review.state == ReviewState.OPEN

    def holder(self, now: datetime) -> str | None:
        """Who holds a live claim; an expired lease frees the item."""
        if self.claimed_by and self.claim_expires_at and self.claim_expires_at > now:
            return self.claimed_by
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueFilter:
    state: ReviewState | None = ReviewState.OPEN
    flow: str | None = None
    assignee: str | None = None  # an operator name, or "none" for unclaimed items
    older_than: float | None = None  # seconds
    sla_state: SlaState | None = None
    order: Order = Order.NEWEST
    search: str | None = None  # a review, run or event id, or words of the subject
    search_subject: bool = False  # whether the words are looked for in subjects (roles that see payloads)
    after: str | None = None  # the cursor of the last item of the previous page
    limit: int = 50
