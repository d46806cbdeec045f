"""JSON shapes of domain objects at the HTTP edge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.domain.model import Delivery, Run, Transition
from gateway.domain.ports import Capabilities, OrphanRun


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def run_summary(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "event_id": run.event_id,
        "route": run.route,
        "flow": run.flow,
        "provider": run.provider,
        "template": run.template,
        "status": run.status.value,
        "provider_status": run.provider_status,
        "provider_run_id": run.provider_run_id,
        "created_at": _time(run.created_at),
        "updated_at": _time(run.updated_at),
        "finished_at": _time(run.finished_at),
    }


def run_detail(run: Run, timeline: list[Transition], capabilities: Capabilities | None) -> dict[str, Any]:
    return {
        **run_summary(run),
        "input": run.input,
        "output": run.output,
        "error": run.error,
        "pending": run.pending.as_dict() if run.pending else None,
        "capabilities": capabilities.as_dict() if capabilities else None,
        "timeline": [transition(step) for step in timeline],
    }


def transition(step: Transition) -> dict[str, Any]:
    return {
        "at": _time(step.at),
        "from": step.from_status.value if step.from_status else None,
        "to": step.to_status.value,
        "cause": step.cause,
        "detail": step.detail,
    }


def delivery(item: Delivery) -> dict[str, Any]:
    return {
        "id": item.id,
        "run_id": item.run_id,
        "sink": item.sink,
        "state": item.state.value,
        "attempts": item.attempts,
        "next_attempt_at": _time(item.next_attempt_at),
        "last_error": item.last_error,
        "last_status_code": item.last_status_code,
        "created_at": _time(item.created_at),
        "delivered_at": _time(item.delivered_at),
    }


def orphan(found: OrphanRun) -> dict[str, Any]:
    return {
        "provider": found.provider,
        "provider_run_id": found.provider_run_id,
        "notifications": found.notifications,
        "first_received_at": _time(found.first_received_at),
        "last_received_at": _time(found.last_received_at),
        "last_status": found.last_status,
        "last_state_id": found.last_state_id,
    }
