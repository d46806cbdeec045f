"""The stream follower against a scripted inference.sh: reconnects after a drop mid-run, falls back to polling,
continues the run's trace."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.config.settings import parse_settings
from gateway.core.config_types import Secret
from gateway.domain.model import JobKind, RunStatus
from gateway.domain.ports import NewJob
from gateway.domain.streaming import StreamPolicy
from gateway.engine.follower import StreamFollower
from gateway.observability import tracing
from gateway.providers import inferencesh as inf
from tests.support import SOURCE, Running, example_data, running_gateway

HOST = "https://inf.test"
RUN_ID = "flowrun_scripted"
CE = {"Content-Type": "application/cloudevents+json"}
EVENT = {
    "specversion": "1.0",
    "id": "enriched-1",
    "source": "/ehr",
    "type": "com.example.patient.enriched",
    "data": {"patient": {"id": "P-7"}},
}


class Inference:
    """A scripted inference.sh: ``status`` is what GET answers; ``streams`` what each stream connection sends."""

    def __init__(self, streams: list[list[Any]]) -> None:
        self.status = 1
        self.streams = streams
        self.stream_requests = 0
        self.traceparents: list[str | None] = []

    def rest(self, request: httpx.Request) -> httpx.Response:
        output = {"patientId": "P-7"} if self.status == 3 else None
        return httpx.Response(200, json={"id": RUN_ID, "status": self.status, "output": output})

    async def stream(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/flowruns/{RUN_ID}/stream"
        script = self.streams[min(self.stream_requests, len(self.streams) - 1)]
        self.stream_requests += 1
        self.traceparents.append(request.headers.get("traceparent"))
        if isinstance(script[0], int):
            return httpx.Response(int(script[0]), json={"type": "https://api.inference.sh/errors/not_found"})

        async def body() -> AsyncIterator[bytes]:
            for part in script:
                if isinstance(part, BaseException):
                    raise part
                if isinstance(part, asyncio.Event):
                    await part.wait()
                    continue
                yield part

        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


def message(status: int, *, partial: bool = False) -> bytes:
    data = {"data": {"status": status}, "fields": ["status"]} if partial else {"id": RUN_ID, "status": status}
    return f"data: {json.dumps(data)}\n\n".encode()


@asynccontextmanager
async def scripted(
    tmp_path: Path,
    api: Inference,
    reconnects: int = 5,
    *,
    traceparent: str | None = None,
    tracer: tracing.Tracing | None = None,
) -> AsyncIterator[tuple[Running, StreamFollower]]:
    data = example_data(tmp_path)
    data["providers"]["inferencesh"]["base_url"] = HOST
    async with running_gateway(parse_settings(data, {}), outbound=api.rest) as gw:
        trace = {"traceparent": traceparent} if traceparent else {}
        answer = await gw.client.post("/v1/events", json=EVENT, headers={**SOURCE, **CE, **trace})
        run_id = answer.json()["runs"][0]["id"]
        await gw.settle()
        assert (await gw.services.store.get_run(run_id)).status is RunStatus.CREATED  # type: ignore[union-attr]
        hooks = {"request": [tracing.send_traceparent]}  # as the gateway's own outbound client
        async with httpx.AsyncClient(transport=httpx.MockTransport(api.stream), event_hooks=hooks) as http:
            settings = inf.InferenceShSettings(
                name="inferencesh",
                base_url=HOST,
                api_key=Secret("inf_x"),
                stream_policy=StreamPolicy(reconnects=reconnects, reconnect_delay=0),
            )
            provider = inf.build(settings, http=http, clock=gw.services.clock)
            follower = StreamFollower(
                store=gw.services.store,
                providers={"inferencesh": provider},
                clock=gw.services.clock,
                rng=random.Random(1),
                wake_dispatcher=gw.services.dispatcher.wake,
                tracer=tracer,
            )
            gw.run_id = run_id  # type: ignore[attr-defined]
            yield gw, follower


async def timeline(gw: Running, run_id: str) -> list[tuple[str, str]]:
    return [(step.to_status.value, step.cause) for step in await gw.services.store.timeline(run_id)]


async def test_reconnects_after_a_drop_mid_run(tmp_path: Path) -> None:
    api = Inference(
        [
            [b": hi\n\n", message(1), message(2, partial=True), httpx.ReadError("connection reset")],
            [message(2), message(3, partial=True)],
        ]
    )
    async with scripted(tmp_path, api) as (gw, follower):
        run_id = gw.run_id  # type: ignore[attr-defined]
        api.status = 2
        assert await follower.scan() == 1
        assert await follower.scan() == 0  # already followed
        await follower.idle()
        assert api.stream_requests == 2
        fetches = await gw.services.store.list_jobs(kind=JobKind.FETCH_RUN)
        assert [(job.ref, job.data) for job in fetches] == [(run_id, {"cause": "stream"})]
        api.status = 3
        await gw.settle()
        assert (await timeline(gw, run_id))[-1] == ("COMPLETE", "provider:stream")
        run = await gw.services.store.get_run(run_id)
        assert run is not None and run.output == {"patientId": "P-7"}


async def test_repeated_drops_without_progress_fall_back_to_polling(tmp_path: Path) -> None:
    api = Inference([[message(1), httpx.RemoteProtocolError("peer closed")]])
    async with scripted(tmp_path, api, reconnects=2) as (gw, follower):
        run_id = gw.run_id  # type: ignore[attr-defined]
        await follower.scan()
        await follower.idle()
        assert api.stream_requests == 3  # the first connection and two reconnects
        assert follower.following == set()
        assert await follower.scan() == 0  # it is polled from now on
        jobs = {job.kind: job for job in await gw.services.store.list_jobs()}
        assert jobs[JobKind.FETCH_RUN].data == {"cause": "stream"}  # one catch-up fetch now
        assert jobs[JobKind.POLL_RUN].ref == run_id  # and the provider's poll timer


async def test_a_refused_stream_falls_back_at_once(tmp_path: Path) -> None:
    api = Inference([[404]])
    async with scripted(tmp_path, api) as (gw, follower):
        await follower.scan()
        await follower.idle()
        assert api.stream_requests == 1
        assert [job.kind for job in await gw.services.store.list_jobs(kind=JobKind.FETCH_RUN)] == [JobKind.FETCH_RUN]


async def test_a_run_that_finished_meanwhile_is_not_reconnected(tmp_path: Path) -> None:
    released = asyncio.Event()
    api = Inference([[message(1), released, httpx.ReadError("reset")]])
    async with scripted(tmp_path, api) as (gw, follower):
        run_id = gw.run_id  # type: ignore[attr-defined]
        await follower.scan()
        api.status = 3
        now = gw.services.clock.now()
        await gw.services.store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref=run_id, due_at=now), now)
        await gw.settle()  # a poll finds the run complete while its stream is open
        released.set()
        await follower.idle()
        assert api.stream_requests == 1
        assert await gw.services.store.list_jobs(kind=JobKind.FETCH_RUN) == []


async def test_only_streaming_providers_are_followed(gw: Running) -> None:
    assert gw.services.streams is not None
    assert set(gw.services.streams.sources) == {"inferencesh"}
    empty = StreamFollower(store=gw.services.store, providers={}, clock=gw.services.clock, rng=random.Random(1))
    empty.start()  # nothing to follow: no task
    await empty.stop()
    assert await empty.scan() == 0


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_each_stream_connection_continues_the_runs_trace(tmp_path: Path) -> None:
    api = Inference([[message(2), httpx.ReadError("connection reset")], [message(3)]])
    exporter = InMemorySpanExporter()
    tracer = tracing.Tracing(tracing.TracingSettings(enabled=True), exporter=exporter)
    async with scripted(tmp_path, api, traceparent=TRACEPARENT, tracer=tracer) as (gw, follower):
        run = await gw.services.store.get_run(gw.run_id)  # type: ignore[attr-defined]
        assert run is not None and run.traceparent == TRACEPARENT  # kept with the run (tracing off in the gateway)
        assert await follower.scan() == 1
        await follower.idle()
    spans = [span for span in exporter.get_finished_spans() if span.name == "provider stream_run"]
    assert len(spans) == api.stream_requests == 2  # one span per connection, the dropped one included
    trace_id = TRACEPARENT.split("-")[1]
    for span, sent in zip(spans, api.traceparents, strict=True):
        assert format(span.context.trace_id, "032x") == trace_id
        assert span.parent is not None and format(span.parent.span_id, "016x") == TRACEPARENT.split("-")[2]
        assert span.attributes is not None and span.attributes["gateway.provider"] == "inferencesh"
        assert sent is not None and sent.split("-")[1] == trace_id  # the stream request carries the trace on
        assert sent.split("-")[2] == format(span.context.span_id, "016x")
    assert not spans[0].status.is_ok and spans[1].status.is_ok  # the drop is marked on its span
