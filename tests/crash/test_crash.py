"""The short form of the crash harness (T1, D1, D3, D4): the real gateway process SIGKILLed 6 times under load.

The long form is ``make soak`` (100 kills). See tests/crash/harness.py for the invariants.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crash.harness import HarnessConfig, run_harness


@pytest.mark.crash
async def test_gateway_keeps_its_promises_across_sigkills(tmp_path: Path) -> None:
    report = await run_harness(HarnessConfig(kills=6, seed=11), tmp_path)
    print(report.summary())
    assert report.violations == []
    assert report.kills == 6
    assert report.distinct_events_acked > 0
    assert report.runs == report.runs_complete >= report.distinct_events_acked  # stored but unanswered: more
    assert report.deliveries == 2 * report.runs
