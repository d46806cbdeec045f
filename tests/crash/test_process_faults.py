"""Process-level fault injection (T3): the real gateway against a fake flow API and a fake sink, both in their own
processes, answering a third of their requests badly, plus two SIGKILLs. Every fault here is transient, so the
crash invariants must still hold: nothing lost, one provider run per event, every run at every sink under one id.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crash.harness import HarnessConfig, run_harness

PROVIDER_FAULTS = ["503", "500", "429", "429-date", "reset", "timeout"]
SINK_FAULTS = ["503", "500", "429", "429-date", "reset", "timeout", "302", "huge"]


@pytest.mark.crash
async def test_transient_faults_at_both_boundaries_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    knobs = {"slow_rate": 0.2, "delay": [0.1, 1.0], "error_rate": 0.33, "retry_after": 1, "hang": 5}
    cfg = HarnessConfig(
        kills=2,
        seed=23,
        provider_knobs={**knobs, "faults": PROVIDER_FAULTS},
        sink_knobs={**knobs, "faults": SINK_FAULTS},
        random_kill_window=(2.0, 4.0),
    )
    report = await run_harness(cfg, tmp_path)
    print(report.summary())
    assert report.violations == []
    assert report.runs == report.runs_complete >= report.distinct_events_acked > 0
    assert report.sink_redeliveries > 0  # the sink saw failed attempts again, under the same delivery id
