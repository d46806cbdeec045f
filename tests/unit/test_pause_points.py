"""A pause point learned from notifications: hints apply only to the status they were seen with."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.core import lifecycle
from gateway.jobs import hinted
from gateway.model import PendingInput, Run, RunSnapshot, RunStatus

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def run(status: RunStatus, key: str | None = None) -> Run:
    return Run(
        id="run_1",
        event_id="evt_1",
        route="r",
        flow="f",
        provider="sohar",
        template="t",
        status=status,
        idempotency_key="k",
        created_at=NOW,
        updated_at=NOW,
        provider_run_id="p1",
        pending=PendingInput(key=key) if status == RunStatus.PENDING else None,
    )


def pending(key: str | None) -> RunSnapshot:
    return RunSnapshot(
        provider_run_id="p1", status=RunStatus.PENDING, provider_status="PENDING", pending=PendingInput(key=key)
    )


def test_hint_from_a_notification_about_another_status_is_not_used() -> None:
    snapshot = hinted(pending(None), {"state_hint": "lookup", "status_hint": "IN_PROGRESS"})
    assert snapshot.pending is not None and snapshot.pending.key is None


def test_hint_with_the_same_status_names_the_pause() -> None:
    snapshot = hinted(pending(None), {"state_hint": "await-decision", "status_hint": "PENDING"})
    assert snapshot.pending is not None and snapshot.pending.key == "await-decision"


def test_unknown_pause_point_is_refined_without_a_new_pause() -> None:
    update = lifecycle.apply(run(RunStatus.PENDING, None), pending("await-decision"), cause="fetch", now=NOW)
    assert update.refined_pause and not update.entered_pause and update.transition is None
    assert update.run.pending is not None and update.run.pending.key == "await-decision"


def test_a_different_known_pause_point_is_a_new_pause() -> None:
    update = lifecycle.apply(run(RunStatus.PENDING, "first"), pending("second"), cause="fetch", now=NOW)
    assert update.entered_pause and update.left_pause and update.transition is not None


def test_same_pause_or_unknown_key_changes_nothing() -> None:
    for key in ("first", None):
        update = lifecycle.apply(run(RunStatus.PENDING, "first"), pending(key), cause="fetch", now=NOW)
        assert not update.changed and not update.refined_pause
