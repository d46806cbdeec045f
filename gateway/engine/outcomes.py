"""Provider answers that need a second look before the job handlers act on them.

* A resume that failed may still have been applied (a 502 or 504 after the agent ran, an answer lost after the
  request was sent), or it was refused because an earlier attempt was applied (400 "not paused"). The handler
  fetches the run at once and acts on what the provider says (``worth_a_look``, ``lifecycle.pause_fate``).
* A run the provider answers 404 for (purged, or forgotten by an emulator that restarted) is checked again
  ``missing_run_confirmations`` times, ``missing_run_interval`` apart, then ends as ERROR with the error code
  ``provider_run_missing`` (``missing_count``, ``ended_missing``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from gateway.core import lifecycle
from gateway.domain import errors
from gateway.domain.model import Job, Run, RunStatus, Transition

MISSING_RUN = "provider_run_missing"
MISSING_KEY = "missing"  # job data: how many 404s this job has seen for its run


def worth_a_look(exc: errors.ProviderError) -> bool:
    """Whether a fetch can tell what became of a failed resume: it may have been applied, or the provider refused
    it. Not for throttling, a call never sent, or an operation the provider does not have."""
    if isinstance(exc, errors.UnsupportedOperation) or exc.status_code == 429:
        return False
    return exc.maybe_applied or isinstance(exc, errors.PermanentProviderError)


def is_missing(exc: errors.ProviderError) -> bool:
    return isinstance(exc, errors.PermanentProviderError) and exc.status_code == 404


def missing_count(job: Job) -> int:
    """The 404s this job saw for its run before this one."""
    seen = job.data.get(MISSING_KEY)
    return seen if isinstance(seen, int) and not isinstance(seen, bool) and seen > 0 else 0


def ended_missing(run: Run, now: datetime, confirmations: int) -> tuple[Run, Transition]:
    """The run ended as ERROR because the provider no longer knows it."""
    moved, step = lifecycle.transition(
        run, RunStatus.ERROR, cause="provider:missing", now=now, detail=f"{MISSING_RUN} status=404"
    )
    message = f"the provider answered 404 for run {run.provider_run_id} {confirmations} times"
    return replace(moved, error={"code": MISSING_RUN, "message": message, "status_code": 404}), step
