"""Operating the gateway (issue 13): failure alerts, per-sink policy, secret rotation, attempts, traces, dead jobs."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from standardwebhooks.webhooks import Webhook

from gateway.core import signing
from gateway.domain.model import DeliveryState
from gateway.observability.logs import JsonFormatter
from tests import faults
from tests.faults import OPERATOR, SINK_SECRET, SOURCE, Rig, rig

ALERT_SECRET = signing.generate_secret(bytes(range(2, 34)))
OLD_ALERT_SECRET = signing.generate_secret(bytes(range(3, 35)))
NEW_SINK_SECRET = signing.generate_secret(bytes(range(4, 36)))
ALERT_ENV = {"ALERT_SECRET": ALERT_SECRET, "OLD_ALERT_SECRET": OLD_ALERT_SECRET, "NEW_SINK_SECRET": NEW_SINK_SECRET}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def with_alerts(events: list[str] | None = None, **sink: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        data["alerts"] = {"url": "https://alerts.test/hook", "secret_env": ["ALERT_SECRET", "OLD_ALERT_SECRET"]}
        if events is not None:
            data["alerts"]["events"] = events
        data["sinks"]["hook"].update(sink)

    return change


def alerts(r: Rig, kind: str | None = None) -> list[httpx.Request]:
    sent = [req for req in r.elsewhere if req.url.host == "alerts.test"]
    return [req for req in sent if kind is None or json.loads(req.content)["type"] == kind]


def verified(request: httpx.Request, secret: str) -> Any:
    """What the standardwebhooks library makes of the request (it raises when the signature does not verify).
    The library checks the timestamp against the wall clock, so the tests that use it start the rig's clock now."""
    return Webhook(secret).verify(request.content, dict(request.headers))


def wall_clock(r: Rig) -> Rig:
    r.clock.current = datetime.now(UTC)
    return r


async def one_delivery(r: Rig) -> str:
    await r.complete("evt-1")
    await r.drain()
    (delivery,) = await r.deliveries()
    return str(delivery.id)


async def test_a_dead_delivery_sends_a_signed_alert_that_verifies_with_either_secret(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=with_alerts(retry_delays=[1], max_attempts=2), env=ALERT_ENV) as r:
        wall_clock(r)
        r.sink.always = faults.status(503)
        delivery_id = await one_delivery(r)
        r.clock.advance(2)
        await r.drain()
        await r.drain()  # the alert job
        (alert,) = alerts(r, "delivery.dead")
        for secret in (ALERT_SECRET, OLD_ALERT_SECRET):  # rotation: one signature per secret
            payload = verified(alert, secret)
            assert payload["data"]["delivery_id"] == delivery_id
            assert (payload["data"]["sink"], payload["data"]["attempts"]) == ("hook", 2)
        assert len(alert.headers["webhook-signature"].split(" ")) == 2
        with pytest.raises(Exception, match=r"[Ss]ignature"):
            verified(alert, NEW_SINK_SECRET)
        assert b"result" not in alert.content  # ids and states only, never the run's output


async def test_an_alert_type_left_out_of_events_is_not_sent(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=with_alerts(["review.opened"], max_attempts=1), env=ALERT_ENV) as r:
        r.sink.always = faults.status(503)
        await one_delivery(r)
        await r.drain()
        assert (await r.deliveries())[0].state == DeliveryState.DEAD
        assert alerts(r) == []


async def test_sink_policy_sets_the_schedule_and_the_attempt_budget(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=with_alerts(retry_delays=[10, 20], max_attempts=4), env=ALERT_ENV) as r:
        r.sink.always = faults.status(503)
        delivery_id = await one_delivery(r)
        delays = []
        for _ in range(3):
            delivery = await r.services.store.get_delivery(delivery_id)
            assert delivery is not None and delivery.next_attempt_at is not None
            delays.append((delivery.next_attempt_at - r.clock.now()).total_seconds())
            r.clock.current = delivery.next_attempt_at
            await r.drain()
        delivery = await r.services.store.get_delivery(delivery_id)
        assert delivery is not None and (delivery.state, delivery.attempts) == (DeliveryState.DEAD, 4)
        for planned, seen in zip([10, 20, 20], delays, strict=True):  # the last delay repeats
            assert planned * 0.8 <= seen <= planned * 1.2
        attempts = (await r.client.get(f"/v1/deliveries/{delivery_id}/attempts", headers=OPERATOR)).json()["items"]
        assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 503), (2, 503), (3, 503), (4, 503)]
        assert all(a["duration_ms"] >= 0 and a["response_bytes"] > 0 and "503" in a["error"] for a in attempts)


async def test_sink_throttle_postpones_without_spending_attempts(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=with_alerts(per_second=0.5), env=ALERT_ENV) as r:
        await r.complete("evt-1")
        await r.complete("evt-2")
        await r.drain()
        assert len(r.sink.requests) == 1  # the second waits for a token: 2 s at 0.5 a second
        waiting = [d for d in await r.deliveries() if d.state == DeliveryState.PENDING]
        assert [d.attempts for d in waiting] == [0]
        r.clock.advance(2.5)
        await r.drain()
        assert len(r.sink.requests) == 2
        assert {d.state for d in await r.deliveries()} == {DeliveryState.DELIVERED}


async def test_410_disables_the_sink_with_an_alert(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=with_alerts(), env=ALERT_ENV) as r:
        wall_clock(r)
        r.sink.script = [faults.GONE]
        await one_delivery(r)
        await r.complete("evt-2")  # its delivery is not attempted: the sink is disabled
        await r.drain()
        assert len(r.sink.requests) == 1
        assert {d.state for d in await r.deliveries()} == {DeliveryState.DEAD}
        (alert,) = alerts(r, "sink.disabled")
        assert verified(alert, ALERT_SECRET)["data"]["sink"] == "hook"
        assert len(alerts(r, "delivery.dead")) == 1  # the one that was attempted; not one per skipped delivery


async def test_abort_message_stops_one_delivery_and_leaves_the_sink_enabled(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=with_alerts(), env=ALERT_ENV) as r:
        r.sink.script = [faults.ABORT]
        delivery_id = await one_delivery(r)
        delivery = await r.services.store.get_delivery(delivery_id)
        assert delivery is not None and (delivery.state, delivery.attempts) == (DeliveryState.DEAD, 1)
        await r.complete("evt-2")
        await r.drain()
        assert len(r.sink.requests) == 2
        assert alerts(r, "sink.disabled") == []


async def test_a_sink_failing_longer_than_disable_after_days_is_disabled(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=with_alerts(disable_after_days=1, retry_delays=[3600] * 30), env=ALERT_ENV) as r:
        r.sink.always = faults.status(500)
        delivery_id = await one_delivery(r)
        for _ in range(30):
            delivery = await r.services.store.get_delivery(delivery_id)
            assert delivery is not None
            if delivery.state != DeliveryState.PENDING:
                break
            assert delivery.next_attempt_at is not None
            r.clock.current = delivery.next_attempt_at
            await r.drain()
        sinks = (await r.client.get("/v1/sinks", headers=OPERATOR)).json()["items"]
        assert sinks[0]["disabled"] and "failing since" in sinks[0]["disabled_reason"]
        assert 24 <= len(r.sink.requests) <= 27  # about a day of hourly attempts, then no more
        await r.drain()
        assert len(alerts(r, "sink.disabled")) == 1


async def test_http_sink_signs_with_every_secret_listed(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=with_alerts(secret_env=["FAULT_SINK_SECRET", "NEW_SINK_SECRET"]), env=ALERT_ENV) as r:
        wall_clock(r)
        await one_delivery(r)
        (request,) = r.sink.requests
        assert len(request.headers["webhook-signature"].split(" ")) == 2
        for secret in (SINK_SECRET, NEW_SINK_SECRET):
            assert verified(request, secret)["run"]["status"] == "COMPLETE"


async def test_breaker_opening_and_closing_are_alerted(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=with_alerts(["breaker.opened", "breaker.closed"]), env=ALERT_ENV) as r:
        r.sink.always = faults.status(503)
        for i in range(5):
            await r.complete(f"evt-{i}")
        await r.drain()
        assert [json.loads(a.content)["data"]["breaker"] for a in alerts(r, "breaker.opened")] == ["sink:hook"]
        r.sink.always = None
        r.clock.advance(400)
        await r.drain()
        await r.drain()
        assert len(alerts(r, "breaker.closed")) == 1
        assert len(alerts(r, "breaker.opened")) == 1


async def test_dead_jobs_are_listed_and_retried_through_the_api(tmp_path: Path) -> None:
    async with rig(tmp_path, edit=with_alerts(["job.buried"]), env=ALERT_ENV) as r:
        run_id = await r.submit("evt-1")
        await r.drain()
        run = await r.services.store.get_run(run_id)
        assert run is not None and run.provider_run_id is not None
        r.sohar.gets.always = faults.status(403)  # a permanent refusal: the fetch job is buried
        await r.notify(run.provider_run_id, "COMPLETE")
        await r.drain()
        await r.drain()
        page = (await r.client.get("/v1/jobs/dead", headers=OPERATOR)).json()
        (dead,) = page["items"]
        assert (dead["kind"], dead["ref"], dead["state"]) == ("fetch_run", run_id, "dead")
        assert len(alerts(r, "job.buried")) == 1
        assert (await r.client.get("/v1/jobs/dead?after=x", headers=OPERATOR)).status_code == 400
        r.sohar.gets.always = None
        r.sohar.runs[run.provider_run_id] = "COMPLETE"
        retried = await r.client.post(f"/v1/jobs/{dead['id']}/retry", headers=OPERATOR)
        assert retried.status_code == 202 and retried.json()["state"] == "queued"
        assert (await r.client.post(f"/v1/jobs/{dead['id']}/retry", headers=OPERATOR)).status_code == 409
        assert (await r.client.post("/v1/jobs/999999/retry", headers=OPERATOR)).status_code == 404
        await r.drain()
        finished = await r.services.store.get_run(run_id)
        assert finished is not None and finished.status.value == "COMPLETE"


async def test_one_events_traceparent_reaches_the_provider_and_the_sink(tmp_path: Path) -> None:
    """Tracing off: the caller's traceparent is kept with the event and passed on unchanged."""
    async with rig(tmp_path) as r:
        event = {"specversion": "1.0", "id": "e1", "source": "/tests", "type": "com.example.check", "data": {}}
        answer = await r.client.post("/v1/events", json=event, headers={**SOURCE, "traceparent": TRACEPARENT})
        run_id = answer.json()["runs"][0]["id"]
        await r.drain()
        run = await r.services.store.get_run(run_id)
        assert run is not None and run.traceparent == TRACEPARENT and run.provider_run_id is not None
        r.sohar.runs[run.provider_run_id] = "COMPLETE"
        await r.notify(run.provider_run_id, "COMPLETE")
        await r.drain()
        provider_calls = r.sohar.creates.requests + r.sohar.gets.requests
        assert provider_calls and {req.headers.get("traceparent") for req in provider_calls} == {TRACEPARENT}
        assert [req.headers.get("traceparent") for req in r.sink.requests] == [TRACEPARENT]


async def test_with_tracing_on_every_call_is_a_span_of_the_callers_trace(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()

    def tracing_on(data: dict[str, Any]) -> None:
        data["tracing"] = {"enabled": True}

    async with rig(tmp_path, edit=tracing_on, span_exporter=exporter) as r:
        event = {"specversion": "1.0", "id": "e1", "source": "/tests", "type": "com.example.check", "data": {}}
        answer = await r.client.post("/v1/events", json=event, headers={**SOURCE, "traceparent": TRACEPARENT})
        run = await r.services.store.get_run(answer.json()["runs"][0]["id"])
        assert run is not None and run.traceparent is not None
        trace_id = TRACEPARENT.split("-")[1]
        assert run.traceparent.split("-")[1] == trace_id and run.traceparent != TRACEPARENT  # our request span
        await r.drain()
        assert run.provider_run_id is None
        started = await r.services.store.get_run(run.id)
        assert started is not None and started.provider_run_id is not None
        r.sohar.runs[started.provider_run_id] = "COMPLETE"
        await r.notify(started.provider_run_id, "COMPLETE")
        await r.drain()
        spans = {span.name: span for span in exporter.get_finished_spans()}
        assert {"POST /v1/events", "provider create_run", "provider get_run", "sink deliver"} <= set(spans)
        for name in ("POST /v1/events", "provider create_run", "sink deliver"):
            assert format(spans[name].context.trace_id, "032x") == trace_id
        (sent,) = r.sink.requests
        assert sent.headers["traceparent"].split("-")[2] == format(spans["sink deliver"].context.span_id, "016x")


async def test_log_lines_carry_the_request_id_and_the_trace_id(tmp_path: Path) -> None:
    class Collect(logging.Handler):
        """Formats at emit time, while the request's context is still current."""

        def __init__(self) -> None:
            super().__init__(level=logging.INFO)
            self.setFormatter(JsonFormatter())
            self.lines: list[dict[str, Any]] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.lines.append(json.loads(self.format(record)))

    def tracing_on(data: dict[str, Any]) -> None:
        data["tracing"] = {"enabled": True}

    collect, logger = Collect(), logging.getLogger("gateway.http")
    async with rig(tmp_path, edit=tracing_on, span_exporter=InMemorySpanExporter()) as r:
        event = {"specversion": "1.0", "id": "e1", "source": "/tests", "type": "com.example.check", "data": {}}
        logger.addHandler(collect)
        old = logger.level, logger.disabled
        logger.setLevel(logging.INFO)
        logger.disabled = False  # another library's logging config may have disabled it
        try:
            headers = {**SOURCE, "traceparent": TRACEPARENT, "X-Request-Id": "req-42"}
            await r.client.post("/v1/events", json=event, headers=headers)
            await r.client.post("/v1/events", json=event, headers={**SOURCE, "X-Request-Id": "bad id"})
        finally:
            logger.removeHandler(collect)
            logger.setLevel(old[0])
            logger.disabled = old[1]
    first, second = [line for line in collect.lines if line["message"] == "request"]
    assert (first["request_id"], first["trace_id"]) == ("req-42", TRACEPARENT.split("-")[1])
    assert second["request_id"] != "bad id" and re.fullmatch(r"[0-9a-f]{16}", second["request_id"])
    assert second["trace_id"] != first["trace_id"]  # a new trace: the caller sent none
