"""Which notifications need no Get Run (issue 12 point 3): only a repeat of an in-progress run's own status."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from gateway.core.lifecycle import news_changes_nothing
from gateway.domain.model import Run, RunStatus

AT = datetime(2026, 11, 29, tzinfo=UTC)
RUN = Run(
    id="run_1",
    event_id="evt_1",
    route="r",
    flow="f",
    provider="sohar",
    template="t",
    status=RunStatus.IN_PROGRESS,
    provider_status="RUNNING",
    provider_run_id="fr-1",
    idempotency_key="k",
    created_at=AT,
    updated_at=AT,
)


def test_a_repeat_of_the_in_progress_status_needs_no_fetch() -> None:
    assert news_changes_nothing(RUN, {"status_hint": "RUNNING", "state_hint": "step-2"})
    assert news_changes_nothing(dataclasses.replace(RUN, status=RunStatus.CREATED), {"status_hint": "RUNNING"})


@pytest.mark.parametrize(
    ("status", "provider_status", "hint"),
    [
        (RunStatus.IN_PROGRESS, "RUNNING", {"status_hint": "COMPLETE"}),  # news: the output comes with the fetch
        (RunStatus.IN_PROGRESS, "RUNNING", {"status_hint": "PENDING", "state_hint": "await"}),
        (RunStatus.PENDING, "PENDING", {"status_hint": "PENDING", "state_hint": "other-state"}),  # may pause anew
        (RunStatus.IN_PROGRESS, "RUNNING", {}),  # a poll or a repair: no hint, always fetched
        (RunStatus.UNKNOWN, "RUNNING", {"status_hint": "RUNNING"}),
        (RunStatus.IN_PROGRESS, None, {"status_hint": "RUNNING"}),
    ],
)
def test_everything_else_is_fetched(status: RunStatus, provider_status: str | None, hint: dict[str, str]) -> None:
    run = dataclasses.replace(RUN, status=status, provider_status=provider_status)
    assert not news_changes_nothing(run, hint)
