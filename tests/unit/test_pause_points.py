"""A pause point learned from notifications: the stored state of the same status names an unnamed pause."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.core import lifecycle
from gateway.domain.model import PendingInput, Run, RunSnapshot, RunStatus
from gateway.engine.jobs import named

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


def test_a_stored_state_names_an_unnamed_pause() -> None:
    snapshot = named(pending(None), "await-decision")
    assert snapshot.pending is not None and snapshot.pending.key == "await-decision"


def test_nothing_stored_leaves_the_pause_unnamed() -> None:
    snapshot = named(pending(None), None)
    assert snapshot.pending is not None and snapshot.pending.key is None


def test_a_pause_the_provider_names_keeps_its_name() -> None:
    snapshot = named(pending("from-provider"), "stored")
    assert snapshot.pending is not None and snapshot.pending.key == "from-provider"


def test_a_snapshot_that_is_not_paused_is_not_named() -> None:
    running = RunSnapshot(provider_run_id="p1", status=RunStatus.IN_PROGRESS, provider_status="IN_PROGRESS")
    assert named(running, "await-decision") == running


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
