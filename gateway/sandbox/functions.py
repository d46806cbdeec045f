"""The deterministic functions a ``request`` state may call. Pure: they read the run context, nothing else.

``coverage_lookup`` stands in for Sohar's eligibility resources: it reads ``input.patientId`` (a non-empty
string) and reports coverage as active unless the id ends in ``0``; payer, plan and copay are derived from
a hash of the id, so the same patient always gets the same answer.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from gateway.domain.model import JSON

PAYERS = ("Aetna", "Blue Cross Blue Shield", "Cigna", "Humana", "UnitedHealthcare")
PLAN_TYPES = ("EPO", "HMO", "PPO")


@dataclass(frozen=True, slots=True, kw_only=True)
class StepError:
    """A failed step, shaped like an item of Sohar's run ``errors`` (the state id is added by the engine)."""

    status: int
    param: str
    error: str


Function: TypeAlias = Callable[[Mapping[str, Any]], "JSON | StepError"]


def coverage_lookup(context: Mapping[str, Any]) -> JSON | StepError:
    patient_id = _input(context).get("patientId")
    if not isinstance(patient_id, str) or not patient_id:
        return StepError(status=400, param="patientId", error="invalid_request_error")
    digest = hashlib.sha256(patient_id.encode()).digest()
    return {
        "active": not patient_id.endswith("0"),
        "payer": PAYERS[digest[0] % len(PAYERS)],
        "planType": PLAN_TYPES[digest[1] % len(PLAN_TYPES)],
        "copay": 10 + 10 * (digest[2] % 5),
        "memberId": "M" + digest[3:8].hex().upper(),
    }


def echo(context: Mapping[str, Any]) -> JSON:
    return copy.deepcopy(_input(context))


def fail(context: Mapping[str, Any]) -> StepError:
    return StepError(status=500, param="", error="api_error")


def _input(context: Mapping[str, Any]) -> JSON:
    data = context.get("input")
    return dict(data) if isinstance(data, Mapping) else {}


FUNCTIONS: Mapping[str, Function] = {
    "coverage_lookup": coverage_lookup,
    "echo": echo,
    "fail": fail,
}
