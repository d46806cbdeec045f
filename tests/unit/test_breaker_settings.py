"""[worker.breaker] settings: defaults from RELIABILITY.md §6, overrides, and every problem reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.settings import parse_settings
from gateway.core.breaker import BreakerPolicy
from gateway.domain import errors
from tests.support import example_data


def test_defaults_are_the_recommended_parameters(tmp_path: Path) -> None:
    settings = parse_settings(example_data(tmp_path), {})
    assert settings.worker.breaker == BreakerPolicy()


def test_overrides(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["worker"]["breaker"] = {"consecutive_failures": 3, "window": 10, "failure_ratio": 0.3, "open_seconds": 2}
    policy = parse_settings(data, {}).worker.breaker
    assert (policy.consecutive_failures, policy.window, policy.failure_ratio, policy.open_seconds) == (3, 10, 0.3, 2)
    assert policy.probe_wait == 2  # never longer than the open period


def test_bad_values_and_unknown_keys_are_all_reported(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["worker"]["breaker"] = {"consecutive_failures": 0, "failure_ratio": 2, "open_seconds": "soon", "typo": 1}
    with pytest.raises(errors.ConfigError) as caught:
        parse_settings(data, {})
    text = "\n".join(caught.value.problems)
    for key in ("consecutive_failures", "failure_ratio", "open_seconds", "typo"):
        assert f"worker.breaker.{key}" in text
