"""What the emulators of the other flow APIs (TransactionLink, inference.sh, Reminix) have in common: they run
the configured templates with the pure engine, one step every ``step_delay`` seconds, on the Sohar emulator's
clock, randomness and scheduler, so one background task (and ``run_until_idle`` in tests) drives them all."""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.domain.ports import Clock
from gateway.sandbox.scheduler import Scheduler
from gateway.sandbox.templates import Template

SettingsT = TypeVar("SettingsT")


@dataclass(frozen=True, slots=True, kw_only=True)
class Surroundings:
    """What every template emulator runs on, shared by all of them."""

    templates: Mapping[str, Template]
    step_delay: float
    clock: Clock
    rng: random.Random
    scheduler: Scheduler


class TemplateEmulator(Generic[SettingsT]):
    def __init__(self, settings: SettingsT, surroundings: Surroundings) -> None:
        self.settings = settings
        self.templates = surroundings.templates
        self.scheduler = surroundings.scheduler
        self._step_delay = surroundings.step_delay
        self._clock = surroundings.clock
        self._rng = surroundings.rng

    def _schedule(self, step: Callable[[str], Awaitable[None]], run_id: str) -> None:
        """Run ``step(run_id)`` one step delay from now."""
        self.scheduler.schedule(self._step_delay, functools.partial(step, run_id))
