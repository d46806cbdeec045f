"""Desk settings: ``[flows.X.review]`` policies, ``[ui]`` login and claim parameters, ``[alerts]``. Pure parsing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.core import subject
from gateway.core.config_types import ParseContext, Secret
from gateway.domain.model import JSON

BREACH_ACTIONS = ("none", "escalate", "default_decision", "fail_run")
REVIEW_ALERTS = ("review.opened", "review.sla_warning", "review.sla_breached")
# Failures and runs an operator must hear about (gateway/desk/alerts.py and gateway/engine/jobs.py build each one).
FAILURE_ALERTS = (
    "delivery.dead",  # a delivery used up its attempts, or its sink refused it for good
    "job.buried",  # a provider job gave up (start, fetch, resume or cancel)
    "breaker.opened",  # a sink's or provider's circuit breaker opened
    "breaker.closed",  # ... and closed again
    "sink.disabled",  # a sink answered 410 Gone, or failed for [sinks.X] disable_after_days
    "run.start_held",  # a start whose outcome is unknown is held for an operator
    "run.provider_run_missing",  # the provider no longer knows a run: it ended as ERROR
)
ALERT_TYPES = (*REVIEW_ALERTS, *FAILURE_ALERTS)


@dataclass(frozen=True, slots=True, kw_only=True)
class BreachAction:
    action: str = "none"
    group: str | None = None  # escalate: the group the item is escalated to
    priority: int | None = None  # escalate: the raised priority
    input: JSON | None = None  # default_decision: the decision applied


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaPolicy:
    claim_within: float | None = None  # seconds from opening to the first claim
    decide_within: float | None = None  # seconds from opening to a decision
    warn_at: float = 0.8  # fraction of each window at which a warning is raised
    on_breach: BreachAction = field(default_factory=BreachAction)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReviewPolicy:
    priority: int = 0  # higher is more urgent
    approvals: int = 0  # approvals by other operators needed before the resume is sent (four-eyes: 1)
    sla: SlaPolicy = field(default_factory=SlaPolicy)
    pause_timeout: float | None = None  # the provider's own timeout for a paused run, when known
    expire_before: float = 300.0  # items expire this long before that timeout
    subject: subject.Template | None = None  # the item's subject line, from the run input and gathered data
    claim_to_decide: bool = True  # a decision needs the decider's own live claim


@dataclass(frozen=True, slots=True, kw_only=True)
class UiSettings:
    session_idle: float = 900.0  # 15 min
    session_max: float = 43_200.0  # 12 h
    claim_lease: float = 900.0  # 15 min, renewed by activity
    key_max_days: int = 365
    secure_cookies: bool = False  # derived from server.public_url (https) unless set


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSettings:
    url: str
    secrets: tuple[Secret, ...]  # every one signs each alert (rotation)
    events: frozenset[str] = frozenset(ALERT_TYPES)
    timeout: float = 10.0
    max_attempts: int = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class DeskSettings:
    policies: Mapping[str, ReviewPolicy] = field(default_factory=dict)
    ui: UiSettings = field(default_factory=UiSettings)
    alerts: AlertSettings | None = None

    def policy(self, flow: str) -> ReviewPolicy:
        return self.policies.get(flow) or ReviewPolicy()


def parse_desk(data: Mapping[str, Any], ctx: ParseContext, public_url: str) -> DeskSettings:
    """Read the desk's parts of the whole config document."""
    policies = {}
    for name, raw in ctx.table("flows", data.get("flows")).items():
        if isinstance(raw, Mapping) and "review" in raw:
            policies[str(name)] = _policy(f"flows.{name}.review", ctx.table(f"flows.{name}.review", raw["review"]), ctx)
    return DeskSettings(
        policies=policies,
        ui=_ui(ctx.table("ui", data.get("ui")), ctx, public_url.startswith("https://")),
        alerts=_alerts(data.get("alerts"), ctx),
    )


def _policy(key: str, data: Mapping[str, Any], ctx: ParseContext) -> ReviewPolicy:
    known = {"priority", "approvals", "sla", "pause_timeout", "expire_before", "subject", "claim_to_decide"}
    ctx.unknown_keys(key, data, known)
    pause = data.get("pause_timeout")
    return ReviewPolicy(
        priority=ctx.integer(f"{key}.priority", data.get("priority"), default=0, minimum=-1000, maximum=1000),
        approvals=ctx.integer(f"{key}.approvals", data.get("approvals"), default=0, minimum=0, maximum=5),
        sla=_sla(f"{key}.sla", ctx.table(f"{key}.sla", data.get("sla")), ctx),
        pause_timeout=None if pause is None else ctx.number(f"{key}.pause_timeout", pause, default=0, minimum=1),
        expire_before=ctx.number(f"{key}.expire_before", data.get("expire_before"), default=300.0, minimum=0),
        subject=_subject(f"{key}.subject", data.get("subject"), ctx),
        claim_to_decide=ctx.boolean(f"{key}.claim_to_decide", data.get("claim_to_decide"), default=True),
    )


def _subject(key: str, value: Any, ctx: ParseContext) -> subject.Template | None:
    text = ctx.string(key, value, required=False)
    if text is None:
        return None
    try:
        return subject.parse(text)
    except ValueError as exc:
        ctx.problem(key, str(exc))
        return None


def _sla(key: str, data: Mapping[str, Any], ctx: ParseContext) -> SlaPolicy:
    ctx.unknown_keys(key, data, {"claim_within", "decide_within", "warn_at", "on_breach"})

    def window(name: str) -> float | None:
        value = data.get(name)
        return None if value is None else ctx.number(f"{key}.{name}", value, default=0, minimum=1)

    return SlaPolicy(
        claim_within=window("claim_within"),
        decide_within=window("decide_within"),
        warn_at=ctx.number(f"{key}.warn_at", data.get("warn_at"), default=0.8, minimum=0.01, maximum=1),
        on_breach=_breach(f"{key}.on_breach", data.get("on_breach"), ctx),
    )


def _breach(key: str, value: Any, ctx: ParseContext) -> BreachAction:
    if value is None:
        return BreachAction()
    data = {"action": value} if isinstance(value, str) else ctx.table(key, value)
    ctx.unknown_keys(key, data, {"action", "group", "priority", "input"})
    action = data.get("action")
    if action not in BREACH_ACTIONS:
        ctx.problem(f"{key}.action", f"must be one of {', '.join(BREACH_ACTIONS)}")
        return BreachAction()
    decision = data.get("input")
    if action == "default_decision" and not isinstance(decision, Mapping):
        ctx.problem(f"{key}.input", "is required for default_decision (the input to apply, a table)")
    priority = data.get("priority")
    return BreachAction(
        action=action,
        group=ctx.string(f"{key}.group", data.get("group"), required=False),
        priority=None if priority is None else ctx.integer(f"{key}.priority", priority, default=0),
        input=dict(decision) if isinstance(decision, Mapping) else None,
    )


def _ui(data: Mapping[str, Any], ctx: ParseContext, https: bool) -> UiSettings:
    ctx.unknown_keys("ui", data, {"session_idle", "session_max", "claim_lease", "key_max_days", "secure_cookies"})
    return UiSettings(
        session_idle=ctx.number("ui.session_idle", data.get("session_idle"), default=900, minimum=60),
        session_max=ctx.number("ui.session_max", data.get("session_max"), default=43_200, minimum=300),
        claim_lease=ctx.number("ui.claim_lease", data.get("claim_lease"), default=900, minimum=30),
        key_max_days=ctx.integer("ui.key_max_days", data.get("key_max_days"), default=365, minimum=1, maximum=365),
        secure_cookies=ctx.boolean("ui.secure_cookies", data.get("secure_cookies"), default=https),
    )


def _alerts(value: Any, ctx: ParseContext) -> AlertSettings | None:
    if value is None:
        return None
    data = ctx.table("alerts", value)
    ctx.unknown_keys("alerts", data, {"url", "secret_env", "events", "timeout", "max_attempts"})
    url = ctx.url("alerts.url", data.get("url"))
    secrets = ctx.signing_secrets("alerts.secret_env", data.get("secret_env"))
    events = ctx.string_list("alerts.events", data.get("events"), default=ALERT_TYPES)
    for name in events:
        if name not in ALERT_TYPES:
            ctx.problem("alerts.events", f"{name!r} is not one of {', '.join(ALERT_TYPES)}")
    if url is None or not secrets:
        return None
    return AlertSettings(
        url=url,
        secrets=secrets,
        events=frozenset(events),
        timeout=ctx.number("alerts.timeout", data.get("timeout"), default=10.0, minimum=0.1, maximum=60),
        max_attempts=ctx.integer("alerts.max_attempts", data.get("max_attempts"), default=8, minimum=1),
    )
