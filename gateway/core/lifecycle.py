"""The run state machine: one transition table, and how a provider snapshot changes a run."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from gateway.domain import errors
from gateway.domain.model import TERMINAL_RUN_STATUSES, Run, RunSnapshot, RunStatus, Transition

S = RunStatus
_LIVE_TARGETS = frozenset({S.IN_PROGRESS, S.PENDING, *TERMINAL_RUN_STATUSES, S.UNKNOWN}) - {S.FAILED_TO_START}

ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    S.QUEUED: _LIVE_TARGETS | {S.CREATED, S.FAILED_TO_START, S.HELD},
    S.HELD: _LIVE_TARGETS | {S.CREATED, S.FAILED_TO_START, S.QUEUED},  # adopt, give up, or retry the start
    S.CREATED: _LIVE_TARGETS,
    S.IN_PROGRESS: _LIVE_TARGETS - {S.IN_PROGRESS},
    S.PENDING: _LIVE_TARGETS,  # PENDING -> PENDING only when the pause point changes
    S.UNKNOWN: _LIVE_TARGETS - {S.UNKNOWN},
    S.FAILED_TO_START: frozenset({S.QUEUED}),  # an operator retries the start
    S.COMPLETE: frozenset(),
    S.ERROR: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
}


def news_changes_nothing(run: Run, hint: Mapping[str, object]) -> bool:
    """A notification that repeats the provider status an in-progress run already has gives the gateway nothing
    to act on, so it needs no Get Run. A paused run is always fetched (the pause point and the input it asks
    for can change without its status changing), and so is any news about a status the run does not have."""
    status = hint.get("status_hint")
    return run.status in (S.CREATED, S.IN_PROGRESS) and isinstance(status, str) and status == run.provider_status


def can_move(source: RunStatus, target: RunStatus) -> bool:
    return target in ALLOWED[source]


def transition(
    run: Run, target: RunStatus, *, cause: str, now: datetime, detail: str | None = None
) -> tuple[Run, Transition]:
    """Move a run by command; raises InvalidTransition when the table forbids it."""
    if not can_move(run.status, target):
        raise errors.InvalidTransition(f"run {run.id} cannot move from {run.status} to {target}")
    moved = replace(
        run,
        status=target,
        updated_at=now,
        finished_at=now if target in TERMINAL_RUN_STATUSES else None,
    )
    return moved, Transition(
        run_id=run.id, at=now, from_status=run.status, to_status=target, cause=cause, detail=detail
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RunUpdate:
    """What applying a snapshot did. ``stale`` means the snapshot was older than what we know."""

    run: Run
    transition: Transition | None = None
    entered_pause: bool = False
    refined_pause: bool = False  # still the same pause, whose point (key) has just become known
    left_pause: bool = False
    finished: bool = False
    stale: bool = False

    @property
    def changed(self) -> bool:
        return self.transition is not None


def _pause_key(run: Run) -> str | None:
    return run.pending.key if run.pending else None


def apply(run: Run, snapshot: RunSnapshot, *, cause: str, now: datetime, after_resume: bool = False) -> RunUpdate:
    """Apply what the provider says about a run. Never moves a run backwards (W13).

    ``after_resume``: the snapshot answers our resume, so a pause in it is a new pause even at the same point.
    """
    target = snapshot.status
    observed = replace(
        run,
        provider_status=snapshot.provider_status,
        provider_run_id=run.provider_run_id or snapshot.provider_run_id,
        output=snapshot.output if snapshot.output is not None else run.output,
        error=snapshot.error if snapshot.error is not None else run.error,
        last_news_at=now,
        updated_at=now,
    )
    seen_key = snapshot.pending.key if snapshot.pending else None
    still_paused = target == S.PENDING and run.status == S.PENDING
    if still_paused and not after_resume and seen_key is not None and _pause_key(run) is None:
        return RunUpdate(run=replace(observed, pending=snapshot.pending), refined_pause=True)
    new_pause = still_paused and (after_resume or (seen_key is not None and seen_key != _pause_key(run)))
    if target == run.status and not new_pause:
        return RunUpdate(run=observed)
    if not can_move(run.status, target):
        return RunUpdate(run=replace(run, last_news_at=now), stale=True)
    moved, step = transition(observed, target, cause=cause, now=now, detail=_detail(snapshot))
    moved = replace(moved, pending=snapshot.pending if target == S.PENDING else None)
    return RunUpdate(
        run=moved,
        transition=step,
        entered_pause=target == S.PENDING,
        left_pause=run.status == S.PENDING,
        finished=moved.is_terminal,
    )


class PauseFate(enum.Enum):
    """Where a run stands against the pause it was at, judged from a later snapshot."""

    LEFT = "left"  # another status, or a pause at another known point: a resume was applied (or overtaken)
    STILL = "still"  # paused at the same point (or at a point that is not named): a resume was not applied
    UNCLEAR = "unclear"  # a status the adapter does not know


def pause_fate(run: Run, snapshot: RunSnapshot) -> PauseFate:
    """After a resume whose outcome is unknown: did the run leave the pause it was at?"""
    if snapshot.status == S.UNKNOWN:
        return PauseFate.UNCLEAR
    if snapshot.status != S.PENDING:
        return PauseFate.LEFT
    seen = snapshot.pending.key if snapshot.pending else None
    known = _pause_key(run)
    return PauseFate.LEFT if seen is not None and known is not None and seen != known else PauseFate.STILL


def _detail(snapshot: RunSnapshot) -> str | None:
    parts = [f"provider_status={snapshot.provider_status}"]
    if snapshot.pending and snapshot.pending.key:
        parts.append(f"state={snapshot.pending.key}")
    return " ".join(parts)
