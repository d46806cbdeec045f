"""Queue use cases: view, claim, release, reassign, decide (with four-eyes approvals) and track new items.

Each reads the item, checks the rules, and writes one compare-and-set ``ItemChange`` with its audit rows;
a change that loses the race is a Conflict (409), never a second decision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from gateway.config.settings import Settings
from gateway.core import review as review_rules
from gateway.desk import access, sla
from gateway.desk.access import Principal
from gateway.desk.alerts import Alerts
from gateway.domain import audit, errors
from gateway.domain.audit import AuditEntry
from gateway.domain.desk import Item, QueueFilter
from gateway.domain.model import JSON, JobKind, PendingInput, Review, ReviewState
from gateway.domain.ports import Clock, NewJob
from gateway.store import audit_sql
from gateway.store.access_sql import AccessStore
from gateway.store.queue_sql import ItemChange, QueueStore

MAX_REASON = 500
BULK_ACTIONS = ("claim", "release", "reassign")  # the queue page's bulk actions
API_BULK_ACTIONS = (*BULK_ACTIONS, "decide")  # the JSON API's: the same, and one decision for every item
BULK_LIMIT = 100
_CLEAR_CLAIM = {"claimed_by": None, "claimed_at": None, "claim_expires_at": None}


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    status: int
    body: JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkResult:
    """One item of a bulk action: the item after a claim, release or reassign, the outcome of a decision, or why
    it was refused."""

    review_id: str
    item: Item | None = None
    outcome: Outcome | None = None
    error: errors.GatewayError | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkOutcome:
    results: list[BulkResult]

    @property
    def done(self) -> list[str]:
        return [r.review_id for r in self.results if r.error is None]

    @property
    def refused(self) -> list[tuple[str, str]]:
        """(review id, why not) for each refused item."""
        return [(r.review_id, r.error.message) for r in self.results if r.error is not None]


@dataclass(eq=False, kw_only=True)
class Desk:
    settings: Settings
    queue: QueueStore
    access: AccessStore
    alerts: Alerts
    clock: Clock
    wake: Callable[[], None] = lambda: None

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.desk.ui.claim_lease)

    # reading -------------------------------------------------------------------------------------

    async def page(self, flt: QueueFilter, who: Principal) -> list[Item]:
        _need(who, access.REVIEWS_READ)
        return await self.queue.list_items(flt, self.clock.now())

    async def view(
        self, review_id: str, who: Principal, login: str | None = None, *, activity: bool = True
    ) -> tuple[Item, bool]:
        """The item, and whether this operator sees its payload; showing it is audited (A8, A13): once per
        UI login and item when ``login`` names the login, else on every call (the JSON API). The holder's
        viewing renews the claim, unless it is the page refreshing itself (``activity=False``)."""
        _need(who, access.REVIEWS_READ)
        item = await self.item(review_id)
        now = self.clock.now()
        if who.sees_payload:
            await self.record_view(who, f"review:{item.id}", login)
        if activity and item.holder(now) == who.name:
            await self.queue.apply(self._renewal(item, now), now)
            item = await self.item(review_id)
        return item, who.sees_payload

    async def record_view(self, who: Principal, obj: str, login: str | None) -> None:
        entry = AuditEntry(actor=who.name, action="viewed_payload", object=obj, details=_key_detail(who))
        if login is None:
            await self.access.audit([entry], self.clock.now())
        else:
            await audit_sql.append_once_per_login(self.queue.db, entry, login, self.clock.now())

    async def item(self, review_id: str) -> Item:
        item = await self.queue.get_item(review_id)
        if item is None:
            raise errors.NotFound(f"no review {review_id}")
        if not item.tracked:
            await self.track(item, self.clock.now())
            item = await self.queue.get_item(review_id)
            assert item is not None
        return item

    async def track(self, item: Item, now: datetime) -> bool:
        """Apply the flow's policy to a new review: priority, approvals, SLA timers, 'opened' record, alert."""
        policy = self.settings.desk.policy(item.review.flow)
        due = sla.deadlines(policy, item.review.created_at)
        line = None
        if policy.subject is not None:
            run_input = await self.queue.run_input(item.review.run_id)
            line = policy.subject.render({"input": run_input, "gathered": item.review.gathered})
        fields = {
            "subject": line,
            "priority": policy.priority,
            "approvals_needed": policy.approvals,
            "claim_due_at": due.claim_due_at,
            "decide_due_at": due.decide_due_at,
            "expires_at": due.expires_at,
        }
        timers = [
            NewJob(kind=JobKind.REVIEW_TIMER, ref=sla.timer_ref(item.id, timer), due_at=at) for timer, at in due.timers
        ]
        opened = AuditEntry(
            actor="system", action="opened", object=f"review:{item.id}", details={"run_id": item.review.run_id}
        )
        alert = self.alerts.job("review.opened", replace(item, subject=line), now)
        tracked = await self.queue.track(item.id, fields, audit=[opened], jobs=[*timers, *alert], now=now)
        if tracked:
            self.wake()
        return tracked

    # claims --------------------------------------------------------------------------------------

    async def claim(self, review_id: str, who: Principal, reason: str | None = None) -> Item:
        _need(who, access.REVIEWS_DECIDE)
        item = await self._open_item(review_id)
        now = self.clock.now()
        holder = item.holder(now)
        if holder is not None and holder != who.name:
            raise errors.Conflict(f"review {review_id} is claimed by {holder}")
        fields = {
            "claimed_by": who.name,
            "claimed_at": now if holder is None else item.claimed_at,
            "claim_expires_at": now + self.lease,
            "first_claimed_at": item.first_claimed_at or now,
        }
        entry = _entry(who, "claimed", item, _optional_reason(reason))
        await self._apply(item, fields, [entry], jobs=self._lease_timer(item, now))
        return await self.item(review_id)

    async def release(self, review_id: str, who: Principal, reason: str | None = None) -> Item:
        _need(who, access.REVIEWS_DECIDE)
        item = await self._open_item(review_id)
        if item.holder(self.clock.now()) != who.name:
            raise errors.Conflict(f"review {review_id} is not claimed by {who.name}")
        await self._apply(item, _CLEAR_CLAIM, [_entry(who, "released", item, _optional_reason(reason))])
        return await self.item(review_id)

    async def reassign(self, review_id: str, who: Principal, to: str, reason: str) -> Item:
        _need(who, access.REVIEWS_DECIDE)
        reason = _reason(reason)
        item = await self._open_item(review_id)
        now = self.clock.now()
        holder = item.holder(now)
        if holder not in (None, who.name) and not who.approves:
            raise errors.Forbidden("only the claimer or an approver may reassign a claimed item")
        if not await self._can_decide(to):
            raise errors.InvalidInput(f"{to!r} is not an operator who may decide reviews")
        fields = {
            "claimed_by": to,
            "claimed_at": now,
            "claim_expires_at": now + self.lease,
            "first_claimed_at": item.first_claimed_at or now,
        }
        details = {"from": holder, "to": to, "reason": reason}
        entry = _entry(who, "reassigned", item, details)
        await self._apply(item, fields, [entry], jobs=self._lease_timer(item, now))
        return await self.item(review_id)

    async def bulk(
        self,
        action: str,
        review_ids: Sequence[str],
        who: Principal,
        *,
        to: str = "",
        reason: str = "",
        value: Any = None,
        key: str | None = None,
    ) -> BulkOutcome:
        """Claim, release, reassign or decide several items; each is its own change through the single action (same
        rules, same audit), so one refusal stops no other. A decision's ``key`` becomes ``key:review_id`` per item."""
        _need(who, access.REVIEWS_DECIDE)
        if action not in API_BULK_ACTIONS:
            raise errors.BadRequest(f"action must be one of: {', '.join(API_BULK_ACTIONS)}")
        wanted = list(dict.fromkeys(review_ids))
        if not 1 <= len(wanted) <= BULK_LIMIT:
            raise errors.InvalidInput(f"pick 1 to {BULK_LIMIT} items")
        if action == "reassign":
            reason = _reason(reason)
            if not await self._can_decide(to):
                raise errors.InvalidInput(f"{to!r} is not an operator who may decide reviews")
        results: list[BulkResult] = []
        for review_id in wanted:
            try:
                results.append(await self._one(action, review_id, who, to=to, reason=reason, value=value, key=key))
            except errors.GatewayError as exc:
                results.append(BulkResult(review_id=review_id, error=exc))
        return BulkOutcome(results=results)

    async def _one(
        self, action: str, review_id: str, who: Principal, *, to: str, reason: str, value: Any, key: str | None
    ) -> BulkResult:
        if action == "decide":
            item_key = None if key is None else f"{key}:{review_id}"
            return BulkResult(review_id=review_id, outcome=await self.decide(review_id, who, value, item_key))
        if action == "claim":
            item = await self.claim(review_id, who, reason)
        elif action == "release":
            item = await self.release(review_id, who, reason)
        else:
            item = await self.reassign(review_id, who, to, reason)
        return BulkResult(review_id=review_id, item=item)

    async def _can_decide(self, name: str) -> bool:
        if any(token.name == name for token in self.settings.operator_tokens):
            return True
        operator = await self.access.get_operator(name)
        return bool(
            operator and operator.disabled_at is None and access.REVIEWS_DECIDE in access.role_scopes(operator.roles)
        )

    # decisions -----------------------------------------------------------------------------------

    async def decide(self, review_id: str, who: Principal, value: Any, key: str | None) -> Outcome:
        """Take a decision once. With four-eyes it becomes a proposal that others must approve."""
        _need(who, access.REVIEWS_DECIDE)
        fingerprint = audit.digest(value)
        if key is not None and (replayed := await self._replay(review_id, key, who, fingerprint)) is not None:
            return replayed
        item = await self._open_item(review_id)
        now = self.clock.now()
        holder = item.holder(now)
        if holder is not None and holder != who.name:
            raise errors.Conflict(f"review {review_id} is claimed by {holder}")
        if holder is None and self.settings.desk.policy(item.review.flow).claim_to_decide:
            raise errors.ClaimRequired(f"claim review {review_id} before deciding it (the flow's claim_to_decide)")
        problems = review_rules.validate_any(answerable(self.settings, item.review), value)
        if problems:
            raise errors.InvalidInput("; ".join(problems))
        change = self._decision(item, who, value, fingerprint, holder, now)
        body = _decision_body(item, who, fingerprint, now, proposal=change.decide is None)
        request = (key, who.name, fingerprint, body, 202) if key is not None else None
        if not await self.queue.apply(_with(change, request=request), now):
            if key is not None and (replayed := await self._replay(review_id, key, who, fingerprint)) is not None:
                return replayed
            raise errors.Conflict(f"review {review_id} was decided or changed by someone else")
        self.wake()
        return Outcome(status=202, body=body)

    def _decision(
        self, item: Item, who: Principal, value: Any, fingerprint: str, holder: str | None, now: datetime
    ) -> ItemChange:
        details: dict[str, Any] = {"input_digest": fingerprint, "via": who.via}
        if item.approvals_needed == 0:
            return ItemChange(
                review_id=item.id,
                expected_version=item.version,
                set=_CLEAR_CLAIM,
                decide=(value, who.name),
                audit=[_entry(who, "decided", item, details)],
            )
        if item.proposal_digest is not None:
            raise errors.Conflict(f"review {item.id} has a decision awaiting approval; approve or reject it first")
        fields = {
            "proposal": value,
            "proposal_digest": fingerprint,
            "proposed_by": who.name,
            "proposed_claimer": holder or who.name,
            "proposed_at": now,
        }
        details["approvals_needed"] = item.approvals_needed
        return ItemChange(
            review_id=item.id,
            expected_version=item.version,
            set=fields,
            audit=[_entry(who, "proposed", item, details)],
        )

    async def _replay(self, review_id: str, key: str, who: Principal, fingerprint: str) -> Outcome | None:
        if not 1 <= len(key) <= 255:
            raise errors.BadRequest("Idempotency-Key must be 1 to 255 characters")
        found = await self.queue.replay(review_id, key)
        if found is None:
            return None
        if found.operator != who.name or found.fingerprint != fingerprint:
            raise errors.InvalidInput("this Idempotency-Key was used with a different input")
        return Outcome(status=found.status, body=found.response)

    async def approve(self, review_id: str, who: Principal, digest: str | None) -> Outcome:
        """Four-eyes: an approver other than the claimer and the submitter approves the proposal."""
        _need(who, access.REVIEWS_DECIDE)
        if not who.approves:
            raise errors.Forbidden("approving needs the approver role")
        item = await self._open_item(review_id)
        if item.proposal_digest is None or item.proposal is None or item.proposed_by is None:
            raise errors.Conflict(f"review {review_id} has no decision awaiting approval")
        if digest is not None and digest != item.proposal_digest:
            raise errors.Conflict("the proposed decision changed; look again before approving")
        if who.name in (item.proposed_by, item.proposed_claimer):
            raise errors.Forbidden("four-eyes: the operator who claimed or submitted cannot approve")
        if who.name in item.approvals:
            raise errors.Conflict(f"{who.name} already approved this decision")
        now = self.clock.now()
        done = len(item.approvals) + 1 >= item.approvals_needed
        entries = [_entry(who, "approved", item, {"input_digest": item.proposal_digest})]
        if done:
            approvers = [*item.approvals, who.name]
            details = {"input_digest": item.proposal_digest, "approved_by": approvers, "via": "four-eyes"}
            entries.append(
                AuditEntry(actor=item.proposed_by, action="decided", object=f"review:{item.id}", details=details)
            )
        change = ItemChange(
            review_id=item.id,
            expected_version=item.version,
            set=_CLEAR_CLAIM if done else {},
            decide=(item.proposal, item.proposed_by) if done else None,
            approval=(who.name, item.proposal_digest),
            audit=entries,
        )
        if not await self.queue.apply(change, now):
            raise errors.Conflict(f"review {review_id} changed; look again")
        self.wake()
        state = ReviewState.DECIDED if done else ReviewState.OPEN
        return Outcome(status=202, body={"id": item.id, "state": state.value, "approvals": len(item.approvals) + 1})

    async def reject(self, review_id: str, who: Principal, reason: str) -> Item:
        _need(who, access.REVIEWS_DECIDE)
        if not who.approves:
            raise errors.Forbidden("rejecting a proposal needs the approver role")
        reason = _reason(reason)
        item = await self._open_item(review_id)
        if item.proposal_digest is None:
            raise errors.Conflict(f"review {review_id} has no decision awaiting approval")
        if who.name in (item.proposed_by, item.proposed_claimer):
            raise errors.Forbidden("four-eyes: the operator who claimed or submitted cannot reject")
        fields = dict.fromkeys(("proposal", "proposal_digest", "proposed_by", "proposed_claimer", "proposed_at"))
        details = {"input_digest": item.proposal_digest, "reason": reason}
        await self._apply(item, fields, [_entry(who, "proposal_rejected", item, details)])
        return await self.item(review_id)

    # shared --------------------------------------------------------------------------------------

    async def _open_item(self, review_id: str) -> Item:
        item = await self.item(review_id)
        if not item.is_open:
            raise errors.Conflict(f"review {review_id} is {item.review.state}, not OPEN")
        return item

    async def _apply(
        self, item: Item, fields: dict[str, Any], entries: Sequence[AuditEntry], jobs: Sequence[NewJob] = ()
    ) -> None:
        change = ItemChange(review_id=item.id, expected_version=item.version, set=fields, audit=entries, jobs=jobs)
        if not await self.queue.apply(change, self.clock.now()):
            raise errors.Conflict(f"review {item.id} changed; look again")
        if jobs:
            self.wake()

    def _renewal(self, item: Item, now: datetime) -> ItemChange:
        return ItemChange(
            review_id=item.id,
            expected_version=item.version,
            set={"claim_expires_at": now + self.lease},
            jobs=self._lease_timer(item, now),
        )

    def _lease_timer(self, item: Item, now: datetime) -> list[NewJob]:
        ref = sla.timer_ref(item.id, sla.Timer.LEASE)
        return [NewJob(kind=JobKind.REVIEW_TIMER, ref=ref, due_at=now + self.lease)]


def answerable(settings: Settings, review: Review) -> list[PendingInput]:
    """The requests a decision on ``review`` may answer (its flow's pause points while its own is unknown)."""
    flow = settings.flows.get(review.flow)
    return review_rules.answerable(review.request, list(flow.inputs.values()) if flow else [])


def _need(who: Principal, scope: str) -> None:
    if not who.may(scope):
        raise errors.Forbidden(f"this needs the {scope} scope")


def _entry(who: Principal, action: str, item: Item, details: dict[str, Any] | None = None) -> AuditEntry:
    return AuditEntry(
        actor=who.name, action=action, object=f"review:{item.id}", details={**(details or {}), **_key_detail(who)}
    )


def _key_detail(who: Principal) -> dict[str, Any]:
    return {"key_id": who.key_id} if who.key_id else {}


def _optional_reason(text: str | None) -> dict[str, Any]:
    return {"reason": _reason(text)} if text and text.strip() else {}


def _reason(text: str) -> str:
    cleaned = " ".join(text.split())
    if not 1 <= len(cleaned) <= MAX_REASON:
        raise errors.InvalidInput(f"a reason of 1 to {MAX_REASON} characters is required")
    return cleaned


def _decision_body(item: Item, who: Principal, fingerprint: str, now: datetime, *, proposal: bool) -> JSON:
    if proposal:
        return {
            "id": item.id,
            "state": ReviewState.OPEN.value,
            "awaiting_approvals": item.approvals_needed,
            "proposal_digest": fingerprint,
            "proposed_by": who.name,
        }
    return {
        "id": item.id,
        "state": ReviewState.DECIDED.value,
        "decided_by": who.name,
        "decided_at": now.isoformat().replace("+00:00", "Z"),
        "input_digest": fingerprint,
    }


def _with(change: ItemChange, *, request: tuple[str, str, str, JSON, int] | None) -> ItemChange:
    return replace(change, request=request)
