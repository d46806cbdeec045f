"""Flow templates as data: the states a sandbox run moves through. Built by ``config``, run by ``engine``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from gateway.sandbox.paths import Path

ChoiceOperator: TypeAlias = Literal["equals", "not_equals", "in"]
CHOICE_OPERATORS: tuple[ChoiceOperator, ...] = ("equals", "not_equals", "in")
STATE_TYPES = ("request", "choice", "callback", "end")


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestState:
    """Computes data with a function from the table in ``functions`` and stores it at ``result_path``."""

    id: str
    function: str
    result_path: Path
    next: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChoiceRule:
    path: Path
    operator: ChoiceOperator
    value: Any
    next: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChoiceState:
    """Moves to the ``next`` of the first rule that matches, else to ``default``."""

    id: str
    rules: tuple[ChoiceRule, ...]
    default: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackState:
    """Pauses the run (PENDING) until Update Run stores its input at ``result_path``."""

    id: str
    result_path: Path
    next: str
    input_schema: Mapping[str, Any] | None = None
    # what the pause asks for, shown by APIs that describe it (Reminix ``pendingAction``)
    action_type: str = "input"
    message: str | None = None
    options: tuple[str, ...] | None = None
    assignee: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EndState:
    """Ends the run: COMPLETE, or ERROR with one errors item when ``error`` is set."""

    id: str
    error: bool = False
    error_status: int = 400
    error_code: str = "invalid_request_error"
    error_param: str = ""


State: TypeAlias = RequestState | ChoiceState | CallbackState | EndState


@dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    id: str
    starts_at: str
    states: Mapping[str, State]
    output: Mapping[str, Path]
    input_schema: Mapping[str, Any] | None = None
