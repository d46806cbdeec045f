"""The run state machine: the transition table written out in full, and apply() on provider snapshots."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.core import lifecycle
from gateway.domain import errors
from gateway.domain.model import PendingInput, Run, RunSnapshot, RunStatus

S = RunStatus
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(seconds=5)

# Written out by hand (not derived from lifecycle.ALLOWED), so a change to the table fails here.
EXPECTED: dict[RunStatus, set[RunStatus]] = {
    S.QUEUED: set(S) - {S.QUEUED},
    S.HELD: set(S) - {S.HELD},  # an operator adopts the provider run, retries the start or gives up
    S.CREATED: {S.IN_PROGRESS, S.PENDING, S.COMPLETE, S.ERROR, S.CANCELLED, S.EXPIRED, S.UNKNOWN},
    S.IN_PROGRESS: {S.PENDING, S.COMPLETE, S.ERROR, S.CANCELLED, S.EXPIRED, S.UNKNOWN},
    S.PENDING: {S.IN_PROGRESS, S.PENDING, S.COMPLETE, S.ERROR, S.CANCELLED, S.EXPIRED, S.UNKNOWN},
    S.UNKNOWN: {S.IN_PROGRESS, S.PENDING, S.COMPLETE, S.ERROR, S.CANCELLED, S.EXPIRED},
    S.FAILED_TO_START: {S.QUEUED},
    S.COMPLETE: set(),
    S.ERROR: set(),
    S.CANCELLED: set(),
    S.EXPIRED: set(),
}
PAIRS = [(a, b) for a in S for b in S]


def make_run(status: RunStatus = S.QUEUED, **changes: object) -> Run:
    run = Run(
        id="run_1",
        event_id="evt_1",
        route="r",
        flow="f",
        provider="sohar",
        template="t",
        status=status,
        idempotency_key="gw-1",
        created_at=T0,
        updated_at=T0,
        provider_run_id="prv_1",
        version=3,
    )
    return replace(run, **changes)  # type: ignore[arg-type]


def snap(status: RunStatus, *, key: str | None = None, output: dict[str, object] | None = None) -> RunSnapshot:
    pending = PendingInput(key=key) if status == S.PENDING else None
    return RunSnapshot(
        provider_run_id="prv_1", status=status, provider_status=status.value, output=output, pending=pending
    )


def test_the_table_covers_every_status() -> None:
    assert set(lifecycle.ALLOWED) == set(S)
    assert set(EXPECTED) == set(S)


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_can_move_matches_the_table(source: RunStatus, target: RunStatus) -> None:
    assert lifecycle.can_move(source, target) == (target in EXPECTED[source])


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_transition_by_command(source: RunStatus, target: RunStatus) -> None:
    run = make_run(source)
    if target not in EXPECTED[source]:
        with pytest.raises(errors.InvalidTransition):
            lifecycle.transition(run, target, cause="test", now=T1)
        return
    moved, step = lifecycle.transition(run, target, cause="test", now=T1, detail="d")
    assert moved.status == target
    assert moved.updated_at == T1
    assert moved.finished_at == (T1 if moved.is_terminal else None)
    assert (step.run_id, step.from_status, step.to_status, step.cause, step.detail, step.at) == (
        "run_1",
        source,
        target,
        "test",
        "d",
        T1,
    )


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.CREATED, S.QUEUED),
        (S.IN_PROGRESS, S.CREATED),
        (S.IN_PROGRESS, S.QUEUED),
        (S.PENDING, S.CREATED),
        (S.COMPLETE, S.IN_PROGRESS),
        (S.COMPLETE, S.PENDING),
        (S.ERROR, S.COMPLETE),
        (S.UNKNOWN, S.CREATED),
    ],
)
def test_snapshots_never_move_a_run_backwards(source: RunStatus, target: RunStatus) -> None:
    """W13: an old snapshot is recorded as news but changes nothing else."""
    run = make_run(source, output={"kept": True})
    update = lifecycle.apply(run, snap(target), cause="provider:fetch", now=T1)
    assert update.stale
    assert not update.changed
    assert update.run.status == source
    assert update.run.output == {"kept": True}
    assert update.run.last_news_at == T1
    assert not (update.entered_pause or update.left_pause or update.finished)


@pytest.mark.parametrize("terminal", [S.COMPLETE, S.ERROR, S.CANCELLED, S.EXPIRED])
@pytest.mark.parametrize("target", list(S))
def test_terminal_states_are_sticky(terminal: RunStatus, target: RunStatus) -> None:
    run = make_run(terminal, finished_at=T0)
    update = lifecycle.apply(run, snap(target), cause="provider:fetch", now=T1)
    assert update.run.status == terminal
    assert update.transition is None
    assert update.run.finished_at == T0


def test_same_status_records_news_without_a_transition() -> None:
    run = make_run(S.IN_PROGRESS, provider_status="IN_PROGRESS")
    update = lifecycle.apply(run, snap(S.IN_PROGRESS, output={"x": 1}), cause="provider:fetch", now=T1)
    assert not update.changed and not update.stale
    assert update.run.status == S.IN_PROGRESS
    assert update.run.output == {"x": 1}
    assert update.run.last_news_at == T1
    assert update.run.version == run.version


def test_forward_move_records_cause_and_detail() -> None:
    update = lifecycle.apply(make_run(S.CREATED), snap(S.IN_PROGRESS), cause="provider:fetch", now=T1)
    assert update.changed
    assert update.transition is not None
    assert update.transition.from_status == S.CREATED
    assert update.transition.to_status == S.IN_PROGRESS
    assert update.transition.cause == "provider:fetch"
    assert update.transition.detail == "provider_status=IN_PROGRESS"
    assert not (update.entered_pause or update.left_pause or update.finished)


def test_entering_a_pause() -> None:
    update = lifecycle.apply(make_run(S.IN_PROGRESS), snap(S.PENDING, key="await"), cause="c", now=T1)
    assert update.entered_pause and not update.left_pause and not update.finished
    assert update.run.pending == PendingInput(key="await")
    assert update.transition is not None and update.transition.detail == "provider_status=PENDING state=await"


def test_leaving_a_pause_clears_the_pending_input() -> None:
    run = make_run(S.PENDING, pending=PendingInput(key="await"))
    update = lifecycle.apply(run, snap(S.IN_PROGRESS), cause="c", now=T1)
    assert update.left_pause and not update.entered_pause
    assert update.run.pending is None


def test_pending_to_pending_only_on_a_new_pause_key() -> None:
    run = make_run(S.PENDING, pending=PendingInput(key="first"))
    same = lifecycle.apply(run, snap(S.PENDING, key="first"), cause="c", now=T1)
    assert not same.changed and not same.entered_pause
    unknown = lifecycle.apply(run, snap(S.PENDING), cause="c", now=T1)
    assert not unknown.changed
    moved = lifecycle.apply(run, snap(S.PENDING, key="second"), cause="c", now=T1)
    assert moved.changed and moved.entered_pause and moved.left_pause
    assert moved.run.pending == PendingInput(key="second")


def test_finishing_sets_finished_at_and_keeps_earlier_output() -> None:
    run = make_run(S.PENDING, pending=PendingInput(key="k"), output={"gathered": 1})
    update = lifecycle.apply(run, snap(S.COMPLETE), cause="c", now=T1)
    assert update.finished and update.left_pause
    assert update.run.finished_at == T1
    assert update.run.output == {"gathered": 1}
    assert update.run.pending is None


def test_first_snapshot_sets_the_provider_run_id_but_never_replaces_it() -> None:
    fresh = lifecycle.apply(make_run(S.QUEUED, provider_run_id=None), snap(S.CREATED), cause="c", now=T1)
    assert fresh.run.provider_run_id == "prv_1"
    other = RunSnapshot(provider_run_id="prv_other", status=S.IN_PROGRESS, provider_status="IN_PROGRESS")
    kept = lifecycle.apply(make_run(S.CREATED), other, cause="c", now=T1)
    assert kept.run.provider_run_id == "prv_1"


def test_failed_to_start_can_only_be_queued_again() -> None:
    run = make_run(S.FAILED_TO_START, finished_at=T0)
    moved, _ = lifecycle.transition(run, S.QUEUED, cause="operator:retry", now=T1)
    assert moved.status == S.QUEUED and moved.finished_at is None
    assert lifecycle.apply(run, snap(S.IN_PROGRESS), cause="c", now=T1).stale


# --- what apply() keeps and what it drops (pinned by mutation testing) ------------------------------------


def failed(error: dict[str, object] | None, status: RunStatus = S.ERROR) -> RunSnapshot:
    return RunSnapshot(provider_run_id="prv_1", status=status, provider_status="FAILED", error=error)


def test_the_providers_error_is_kept_on_the_run() -> None:
    update = lifecycle.apply(make_run(S.IN_PROGRESS), failed({"code": "timeout"}), cause="c", now=T1)
    assert update.finished is True
    assert update.run.error == {"code": "timeout"}
    assert update.run.provider_status == "FAILED"


def test_a_later_snapshot_without_an_error_keeps_the_one_known_and_a_new_error_replaces_it() -> None:
    run = make_run(S.ERROR, error={"code": "timeout"}, finished_at=T0)
    kept = lifecycle.apply(run, failed(None), cause="c", now=T1)
    assert kept.run.error == {"code": "timeout"}
    replaced = lifecycle.apply(run, failed({"code": "oom"}), cause="c", now=T1)
    assert replaced.run.error == {"code": "oom"}


@pytest.mark.parametrize("target", [S.IN_PROGRESS, S.COMPLETE, S.ERROR, S.CANCELLED, S.UNKNOWN])
def test_leaving_a_pause_drops_the_pending_input_even_when_the_snapshot_still_carries_one(target: RunStatus) -> None:
    run = make_run(S.PENDING, pending=PendingInput(key="await", options=["approve"]))
    stale_pause = PendingInput(key="await", options=["approve"])
    snapshot = RunSnapshot(provider_run_id="prv_1", status=target, provider_status="x", pending=stale_pause)
    update = lifecycle.apply(run, snapshot, cause="c", now=T1)
    assert update.left_pause is True and update.entered_pause is False
    assert update.run.pending is None


def test_a_pause_keeps_what_the_snapshot_asks_for() -> None:
    asked = PendingInput(key="await", message="Approve?", options=["approve", "deny"], schema={"type": "object"})
    snapshot = RunSnapshot(provider_run_id="prv_1", status=S.PENDING, provider_status="PENDING", pending=asked)
    update = lifecycle.apply(make_run(S.IN_PROGRESS), snapshot, cause="c", now=T1)
    assert update.run.pending == asked
    assert update.run.finished_at is None and update.finished is False


def test_news_updates_the_observed_fields_only() -> None:
    run = make_run(S.IN_PROGRESS, provider_status="RUNNING", output={"a": 1}, error={"code": "old"})
    snapshot = RunSnapshot(provider_run_id="prv_other", status=S.IN_PROGRESS, provider_status="STILL_RUNNING")
    update = lifecycle.apply(run, snapshot, cause="c", now=T1)
    assert update.run == replace(run, provider_status="STILL_RUNNING", last_news_at=T1, updated_at=T1)
    assert update.transition is None and update.changed is False and update.stale is False
    assert (update.entered_pause, update.left_pause, update.finished, update.refined_pause) == (False,) * 4


def test_a_stale_snapshot_records_only_that_news_came() -> None:
    run = make_run(S.COMPLETE, provider_status="DONE", output={"a": 1}, finished_at=T0)
    snapshot = RunSnapshot(provider_run_id="prv_1", status=S.IN_PROGRESS, provider_status="LATE", output={"b": 2})
    update = lifecycle.apply(run, snapshot, cause="c", now=T1)
    assert update.stale is True and update.changed is False
    assert update.run == replace(run, last_news_at=T1)


def test_a_refined_pause_changes_only_the_pending_input_and_the_news() -> None:
    run = make_run(S.PENDING, pending=PendingInput(), provider_status="PENDING")
    snapshot = RunSnapshot(
        provider_run_id="prv_1", status=S.PENDING, provider_status="PENDING", pending=PendingInput(key="k")
    )
    update = lifecycle.apply(run, snapshot, cause="c", now=T1)
    assert update.refined_pause is True and update.changed is False and update.entered_pause is False
    assert update.run == replace(run, pending=PendingInput(key="k"), last_news_at=T1, updated_at=T1)


def test_after_a_resume_a_pause_at_the_same_point_is_a_new_pause() -> None:
    run = make_run(S.PENDING, pending=PendingInput(key="k"))
    again = lifecycle.apply(run, snap(S.PENDING, key="k"), cause="c", now=T1, after_resume=True)
    assert again.changed is True and again.entered_pause is True and again.left_pause is True
    unknown = lifecycle.apply(run, snap(S.PENDING), cause="c", now=T1, after_resume=True)
    assert unknown.changed is True and unknown.refined_pause is False
    refined = lifecycle.apply(make_run(S.PENDING, pending=None), snap(S.PENDING, key="k"), cause="c", now=T1)
    assert refined.refined_pause is True


def test_the_transition_detail_names_the_pause_point_only_when_known() -> None:
    known = lifecycle.apply(make_run(S.IN_PROGRESS), snap(S.PENDING, key="await"), cause="c", now=T1)
    assert known.transition is not None and known.transition.detail == "provider_status=PENDING state=await"
    unnamed = lifecycle.apply(make_run(S.IN_PROGRESS), snap(S.PENDING), cause="c", now=T1)
    assert unnamed.transition is not None and unnamed.transition.detail == "provider_status=PENDING"
    assert unnamed.transition.at == T1 and unnamed.transition.run_id == "run_1"


def test_a_refused_transition_names_the_run_and_both_states() -> None:
    with pytest.raises(errors.InvalidTransition) as caught:
        lifecycle.transition(make_run(S.COMPLETE), S.QUEUED, cause="c", now=T1)
    assert caught.value.message == "run run_1 cannot move from COMPLETE to QUEUED"


@pytest.mark.parametrize(
    ("status", "seen", "known", "fate"),
    [
        (S.UNKNOWN, None, "a", lifecycle.PauseFate.UNCLEAR),
        (S.IN_PROGRESS, None, "a", lifecycle.PauseFate.LEFT),
        (S.COMPLETE, None, None, lifecycle.PauseFate.LEFT),
        (S.PENDING, "a", "a", lifecycle.PauseFate.STILL),
        (S.PENDING, "b", "a", lifecycle.PauseFate.LEFT),  # paused again, at another point
        (S.PENDING, None, "a", lifecycle.PauseFate.STILL),  # a point that is not named: no proof it moved
        (S.PENDING, "b", None, lifecycle.PauseFate.STILL),
        (S.PENDING, None, None, lifecycle.PauseFate.STILL),
        (S.PENDING, "no pending input", "a", lifecycle.PauseFate.STILL),
    ],
)
def test_pause_fate(status: RunStatus, seen: str | None, known: str | None, fate: lifecycle.PauseFate) -> None:
    run = make_run(S.PENDING, pending=PendingInput(key=known))
    snapshot = snap(status, key=seen)
    if seen == "no pending input":
        snapshot = replace(snapshot, pending=None)
    assert lifecycle.pause_fate(run, snapshot) is fate
