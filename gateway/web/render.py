"""Domain objects as plain JSON data, for the desk's pages and the operations CLI: the shapes of
``gateway.web.shapes`` (which the JSON API encodes directly), as dicts."""

from __future__ import annotations

from typing import Any

from gateway.domain.model import Delivery, Run, Transition
from gateway.domain.ports import Capabilities, OrphanRun
from gateway.web import shapes
from gateway.web.common import plain


def run_summary(run: Run) -> dict[str, Any]:
    return plain(shapes.RunSummary.of(run))


def run_detail(run: Run, timeline: list[Transition], capabilities: Capabilities | None) -> dict[str, Any]:
    return plain(shapes.RunDetail.detailed(run, timeline, capabilities))


def transition(step: Transition) -> dict[str, Any]:
    return plain(shapes.Transition.of(step))


def delivery(item: Delivery) -> dict[str, Any]:
    return plain(shapes.Delivery.of(item))


def orphan(found: OrphanRun) -> dict[str, Any]:
    return plain(shapes.OrphanRun.of(found))
