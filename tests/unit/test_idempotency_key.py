"""The start idempotency key: fixed per (source, event id, route), and ordered by time (its index is appended to)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.engine.service import idempotency_key

AT = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def test_the_same_event_and_route_give_the_same_key() -> None:
    assert idempotency_key("demo", "e-1", "r", AT) == idempotency_key("demo", "e-1", "r", AT)


def test_source_event_and_route_each_change_the_key() -> None:
    keys = {
        idempotency_key("demo", "e-1", "r", AT),
        idempotency_key("other", "e-1", "r", AT),
        idempotency_key("demo", "e-2", "r", AT),
        idempotency_key("demo", "e-1", "s", AT),
    }
    assert len(keys) == 4


def test_later_keys_sort_after_earlier_ones_whatever_the_event() -> None:
    keys = [idempotency_key("demo", f"e-{999 - n}", "r", AT + timedelta(milliseconds=n)) for n in range(0, 5000, 3)]
    assert keys == sorted(keys)
    assert all(key.startswith("gw-") and len(key) == 43 for key in keys)
