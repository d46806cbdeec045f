"""Contract tests for the http and jsonl sinks: HTTP through httpx.MockTransport, files in tmp_path."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.core import signing
from gateway.core.config_types import ParseContext
from gateway.domain import errors
from gateway.domain.model import DeliveryEnvelope, Run, RunStatus
from gateway.sinks import SINKS, sink_module
from gateway.sinks import http as http_sink
from gateway.sinks import jsonl as jsonl_sink

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SECRET = signing.generate_secret(bytes(range(32)))
OTHER_SECRET = signing.generate_secret(bytes(range(1, 33)))
URL = "https://sink.internal.example/hooks/runs"
PAYLOAD_MARKER = "patient-name-do-not-leak"
Handler = Callable[[httpx.Request], httpx.Response]


class FrozenClock:
    def __init__(self, now: datetime = T0) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


def envelope(delivery_id: str = "dlv_01", *, attempt: int = 1, output: Any = None) -> DeliveryEnvelope:
    run = Run(
        id="run_01",
        event_id="evt_01",
        route="intake",
        flow="triage",
        provider="sohar",
        template="tmpl_1",
        status=RunStatus.COMPLETE,
        idempotency_key="idem_1",
        created_at=T0,
        updated_at=T0,
        provider_run_id="prv_01",
        output={"summary": PAYLOAD_MARKER} if output is None else output,
        finished_at=T0,
    )
    return DeliveryEnvelope(delivery_id=delivery_id, run=run, attempt=attempt)


def context(**environ: str) -> ParseContext:
    return ParseContext(environ={"SINK_SECRET": SECRET, **environ})


@pytest.fixture
async def clients() -> AsyncIterator[list[httpx.AsyncClient]]:
    opened: list[httpx.AsyncClient] = []
    yield opened
    for client in opened:
        await client.aclose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def make_http_sink(clients: list[httpx.AsyncClient], clock: FrozenClock) -> Callable[..., http_sink.HttpSink]:
    def make(handler: Handler, **settings: Any) -> http_sink.HttpSink:
        ctx = context(SINK_AUTH="Bearer s3cr3t")
        parsed = http_sink.parse_settings("out", {"url": URL, "secret_env": "SINK_SECRET", **settings}, ctx)
        assert ctx.problems == []
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        clients.append(client)
        return http_sink.build(parsed, http=client, clock=clock)

    return make


def recording(status: int = 200, **response: Any) -> tuple[list[httpx.Request], Handler]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, **response)

    return seen, handler


def verify(request: httpx.Request, now: datetime, secret: str = SECRET) -> signing.VerifiedMessage:
    keys = [signing.parse_verify_key(secret)]
    return signing.verify(request.content, request.headers, keys, now=now)


# --- registry ---


def test_registry_resolves_both_kinds_and_refuses_others() -> None:
    assert set(SINKS) == {"http", "jsonl"}
    assert sink_module("http").build is http_sink.build
    assert sink_module("jsonl").parse_settings is jsonl_sink.parse_settings
    with pytest.raises(KeyError):
        sink_module("ftp")


# --- http: request shape and signing ---


async def test_http_posts_compact_signed_json(make_http_sink: Any, clock: FrozenClock) -> None:
    seen, handler = recording(200)
    sink = make_http_sink(handler)

    receipt = await sink.deliver(envelope("dlv_01"))

    assert receipt.status_code == 200
    [request] = seen
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["content-type"] == "application/json"
    assert request.content == json.dumps(envelope("dlv_01").body(), separators=(",", ":")).encode()
    assert json.loads(request.content)["run"]["id"] == "run_01"
    assert request.headers["webhook-id"] == "dlv_01"
    assert request.headers["idempotency-key"] == "dlv_01"
    assert request.headers["webhook-timestamp"] == str(int(T0.timestamp()))
    assert verify(request, clock.now()) == signing.VerifiedMessage(id="dlv_01", timestamp=int(T0.timestamp()))


async def test_http_signature_does_not_verify_with_another_secret(make_http_sink: Any, clock: FrozenClock) -> None:
    seen, handler = recording(200)
    await make_http_sink(handler).deliver(envelope())

    with pytest.raises(errors.SignatureError):
        verify(seen[0], clock.now(), OTHER_SECRET)


async def test_http_retries_keep_the_id_and_resign_with_a_fresh_timestamp(
    make_http_sink: Any, clock: FrozenClock
) -> None:
    seen, handler = recording(503)
    sink = make_http_sink(handler)

    with pytest.raises(errors.TransientSinkError):
        await sink.deliver(envelope("dlv_01", attempt=1))
    clock.advance(5)
    with pytest.raises(errors.TransientSinkError):
        await sink.deliver(envelope("dlv_01", attempt=2))

    first, second = seen
    for name in ("webhook-id", "idempotency-key"):
        assert first.headers[name] == second.headers[name] == "dlv_01"
    assert int(second.headers["webhook-timestamp"]) == int(first.headers["webhook-timestamp"]) + 5
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    assert verify(first, T0).timestamp == int(T0.timestamp())
    assert verify(second, clock.now()).timestamp == int(clock.now().timestamp())


async def test_http_sends_static_headers_and_the_auth_header_from_env(make_http_sink: Any) -> None:
    seen, handler = recording(204)
    sink = make_http_sink(handler, headers={"X-Team": "claims"}, auth_header_env="SINK_AUTH")

    await sink.deliver(envelope())

    assert seen[0].headers["x-team"] == "claims"
    assert seen[0].headers["authorization"] == "Bearer s3cr3t"


# --- http: response classes ---


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_http_2xx_is_delivered(make_http_sink: Any, status: int) -> None:
    _, handler = recording(status)
    receipt = await make_http_sink(handler).deliver(envelope())
    assert receipt.status_code == status


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_http_redirect_is_a_failure_and_never_followed(make_http_sink: Any, status: int) -> None:
    seen, handler = recording(status, headers={"Location": "http://169.254.169.254/latest/meta-data/"})

    with pytest.raises(errors.TransientSinkError) as caught:
        await make_http_sink(handler).deliver(envelope())

    assert caught.value.status_code == status
    assert len(seen) == 1


async def test_http_410_is_permanent(make_http_sink: Any) -> None:
    _, handler = recording(410)
    with pytest.raises(errors.PermanentSinkError) as caught:
        await make_http_sink(handler).deliver(envelope())
    assert caught.value.status_code == 410


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("Thu, 01 Jan 2026 00:02:00 GMT", 120.0),
        ("Wed, 31 Dec 2025 23:00:00 GMT", 0.0),  # already past
        ("999999", 3600.0),  # capped
        ("soon", None),
    ],
)
async def test_http_429_honours_retry_after(make_http_sink: Any, retry_after: str, expected: float | None) -> None:
    _, handler = recording(429, headers={"Retry-After": retry_after})

    with pytest.raises(errors.TransientSinkError) as caught:
        await make_http_sink(handler).deliver(envelope())

    assert caught.value.status_code == 429
    assert caught.value.retry_after == expected


@pytest.mark.parametrize("status", [408, 425, 500, 502, 503, 504])
async def test_http_throttle_and_server_errors_are_transient(make_http_sink: Any, status: int) -> None:
    _, handler = recording(status, headers={"Retry-After": "30"})
    with pytest.raises(errors.TransientSinkError) as caught:
        await make_http_sink(handler).deliver(envelope())
    assert (caught.value.status_code, caught.value.retry_after) == (status, 30.0)


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_http_other_4xx_is_transient_on_the_schedule(make_http_sink: Any, status: int) -> None:
    _, handler = recording(status, headers={"Retry-After": "30"})
    with pytest.raises(errors.TransientSinkError) as caught:
        await make_http_sink(handler).deliver(envelope())
    assert (caught.value.status_code, caught.value.retry_after) == (status, None)


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectTimeout, httpx.ReadTimeout, httpx.ConnectError, httpx.RemoteProtocolError],
)
async def test_http_network_failures_are_transient(make_http_sink: Any, exc: type[httpx.TransportError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    with pytest.raises(errors.TransientSinkError) as caught:
        await make_http_sink(handler).deliver(envelope("dlv_net"))
    assert caught.value.status_code is None
    assert "dlv_net" in caught.value.message


async def test_http_slow_drip_response_ends_at_the_deadline(make_http_sink: Any) -> None:
    async def drip() -> AsyncIterator[bytes]:
        yield b"x"
        await asyncio.Event().wait()  # never sends the rest
        yield b"never"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=drip())

    with pytest.raises(errors.TransientSinkError, match="timed out"):
        await make_http_sink(handler, timeout=0.2).deliver(envelope())


@pytest.mark.parametrize("status", [200, 500])
async def test_http_stops_reading_a_huge_response_at_the_cap(make_http_sink: Any, status: int) -> None:
    consumed = 0

    async def huge() -> AsyncIterator[bytes]:
        nonlocal consumed
        for _ in range(100_000):  # about 100 MiB if read to the end
            consumed += 1
            yield b"x" * 1024

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=huge())

    sink = make_http_sink(handler, max_response_bytes=8 * 1024)
    try:
        receipt = await sink.deliver(envelope())
    except errors.TransientSinkError as exc:
        assert exc.status_code == status
    else:
        assert receipt.status_code == status
        assert receipt.detail is not None and "x" not in receipt.detail
    assert 1 <= consumed <= 9


async def test_http_error_messages_hold_no_payload_or_url(make_http_sink: Any) -> None:
    _, handler = recording(500, text=PAYLOAD_MARKER)
    with pytest.raises(errors.TransientSinkError) as caught:
        await make_http_sink(handler).deliver(envelope("dlv_77"))
    message = caught.value.message
    assert "out" in message and "dlv_77" in message and "500" in message
    assert PAYLOAD_MARKER not in message and "sink.internal.example" not in message


# --- http: settings ---


def http_problems(data: dict[str, Any], **environ: str) -> list[str]:
    ctx = context(**environ)
    http_sink.parse_settings("out", data, ctx)
    return ctx.problems


def test_http_settings_defaults() -> None:
    ctx = context()
    parsed = http_sink.parse_settings(
        "out",
        {"url": URL, "secret_env": "SINK_SECRET", "kind": "http", "flows": ["x"], "on": ["COMPLETE"]},
        ctx,
    )
    assert ctx.problems == []
    assert (parsed.url, parsed.timeout, parsed.max_response_bytes) == (URL, 15.0, 65536)
    assert parsed.auth_header is None
    assert SECRET not in repr(parsed)


def test_http_settings_missing_url_and_secret() -> None:
    problems = http_problems({})
    assert any(p.startswith("sinks.out.url:") for p in problems)
    assert any(p.startswith("sinks.out.secret_env:") for p in problems)


@pytest.mark.parametrize(
    "url",
    ["https://user:pw@sink.example/hook", "https://user@sink.example/hook"],
)
def test_http_settings_refuse_userinfo(url: str) -> None:
    problems = http_problems({"url": url, "secret_env": "SINK_SECRET"})
    assert len(problems) == 1 and problems[0].startswith("sinks.out.url:")
    assert "pw" not in problems[0].split(":", 1)[1]


@pytest.mark.parametrize(
    "query",
    [
        "token=abc",
        "access_token=abc",
        "api_key=abc",
        "apiKey=abc",
        "key=abc",
        "secret=abc",
        "password=abc",
        "sig=abc",
        "X-Amz-Signature=abc",
        "tenant=a&auth=abc",
    ],
)
def test_http_settings_refuse_credential_query_strings(query: str) -> None:
    problems = http_problems({"url": f"{URL}?{query}", "secret_env": "SINK_SECRET"})
    assert len(problems) == 1 and problems[0].startswith("sinks.out.url:")
    assert "abc" not in problems[0]


def test_http_settings_accept_harmless_query_strings() -> None:
    assert http_problems({"url": f"{URL}?tenant=a&keyboard=1&monkey=2", "secret_env": "SINK_SECRET"}) == []


def test_http_settings_secret_env_unset_or_not_a_signing_secret() -> None:
    unset = http_problems({"url": URL, "secret_env": "NOPE"})
    bad = http_problems({"url": URL, "secret_env": "BAD"}, BAD="not-a-whsec-secret")
    assert [p.split(":")[0] for p in unset] == ["sinks.out.secret_env"]
    assert [p.split(":")[0] for p in bad] == ["sinks.out.secret_env"]
    assert "not-a-whsec-secret" not in bad[0]


@pytest.mark.parametrize(
    "header",
    [
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "X-Api-Key",
        "X-Auth-Token",
        "webhook-id",
        "Idempotency-Key",
        "Content-Type",
        "bad header",
    ],
)
def test_http_settings_refuse_credential_and_reserved_headers(header: str) -> None:
    problems = http_problems({"url": URL, "secret_env": "SINK_SECRET", "headers": {header: "v"}})
    assert [p.split(":")[0] for p in problems] == [f"sinks.out.headers.{header}"]


def test_http_settings_report_every_problem_at_once() -> None:
    problems = http_problems(
        {"secret_env": "NOPE", "timeout": "slow", "max_response_bytes": -1, "headers": {"X-A": 1}, "bogus": 1}
    )
    keys = sorted(p.split(":")[0] for p in problems)
    assert keys == sorted(
        [
            "sinks.out.bogus",
            "sinks.out.url",
            "sinks.out.secret_env",
            "sinks.out.timeout",
            "sinks.out.max_response_bytes",
            "sinks.out.headers.X-A",
        ]
    )


# --- jsonl ---


@pytest.fixture
async def plain_client() -> AsyncIterator[httpx.AsyncClient]:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError("the jsonl sink must not use HTTP")

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        yield client


@pytest.fixture
def make_jsonl_sink(plain_client: httpx.AsyncClient, clock: FrozenClock) -> Callable[..., jsonl_sink.JsonlSink]:
    def make(path: Path, **settings: Any) -> jsonl_sink.JsonlSink:
        ctx = context()
        parsed = jsonl_sink.parse_settings("file", {"path": str(path), **settings}, ctx)
        assert ctx.problems == []
        return jsonl_sink.build(parsed, http=plain_client, clock=clock)

    return make


def read_lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


async def test_jsonl_appends_one_sorted_line_per_delivery(make_jsonl_sink: Any, tmp_path: Path) -> None:
    path = tmp_path / "out" / "runs.jsonl"
    sink = make_jsonl_sink(path)

    await sink.deliver(envelope("dlv_1"))
    await sink.deliver(envelope("dlv_2"))

    lines = path.read_text().splitlines()
    assert lines[0] == json.dumps(envelope("dlv_1").body(), separators=(",", ":"), sort_keys=True)
    records = read_lines(path)
    assert [r["delivery_id"] for r in records] == ["dlv_1", "dlv_2"]
    assert all(r["run"]["id"] == "run_01" and r["output"] == {"summary": PAYLOAD_MARKER} for r in records)


async def test_jsonl_creates_a_private_directory_and_file(make_jsonl_sink: Any, tmp_path: Path) -> None:
    path = tmp_path / "private" / "runs.jsonl"
    await make_jsonl_sink(path, fsync=False).deliver(envelope())

    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_jsonl_relative_path_is_under_the_working_directory(
    make_jsonl_sink: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    await make_jsonl_sink(Path("data/runs.jsonl")).deliver(envelope())
    assert len(read_lines(tmp_path / "data" / "runs.jsonl")) == 1


async def test_jsonl_refuses_to_write_through_a_symlink(make_jsonl_sink: Any, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me\n")
    link = tmp_path / "runs.jsonl"
    link.symlink_to(target)

    with pytest.raises(errors.PermanentSinkError, match="symlink"):
        await make_jsonl_sink(link).deliver(envelope())
    assert target.read_text() == "keep me\n"


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
async def test_jsonl_refuses_a_target_that_is_not_a_regular_file(make_jsonl_sink: Any) -> None:
    with pytest.raises(errors.PermanentSinkError):
        await make_jsonl_sink(Path("/dev/null")).deliver(envelope())


async def test_jsonl_os_errors_are_transient(make_jsonl_sink: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(errors.TransientSinkError) as caught:
        await make_jsonl_sink(blocker / "runs.jsonl").deliver(envelope("dlv_os"))
    assert "dlv_os" in caught.value.message and PAYLOAD_MARKER not in caught.value.message


async def test_jsonl_concurrent_deliveries_do_not_interleave(make_jsonl_sink: Any, tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    sink = make_jsonl_sink(path, fsync=False)
    big = {"blob": "y" * 300_000}

    await asyncio.gather(*(sink.deliver(envelope(f"dlv_{i:03}", output=big)) for i in range(40)))

    records = read_lines(path)
    assert sorted(r["delivery_id"] for r in records) == [f"dlv_{i:03}" for i in range(40)]
    assert all(r["output"] == big for r in records)


def jsonl_problems(data: dict[str, Any]) -> list[str]:
    ctx = context()
    jsonl_sink.parse_settings("file", data, ctx)
    return ctx.problems


def test_jsonl_settings() -> None:
    ctx = context()
    parsed = jsonl_sink.parse_settings("file", {"path": "runs.jsonl", "kind": "jsonl", "flows": [], "on": []}, ctx)
    assert ctx.problems == [] and parsed.fsync is True and parsed.path == Path("runs.jsonl")
    assert [p.split(":")[0] for p in jsonl_problems({})] == ["sinks.file.path"]
    assert [p.split(":")[0] for p in jsonl_problems({"path": "../escape.jsonl"})] == ["sinks.file.path"]
    assert [p.split(":")[0] for p in jsonl_problems({"path": "a/../../b.jsonl"})] == ["sinks.file.path"]
    assert sorted(p.split(":")[0] for p in jsonl_problems({"path": "x", "fsync": "yes", "mode": 1})) == [
        "sinks.file.fsync",
        "sinks.file.mode",
    ]


# jsonl: exactly once per delivery id across a crash between the append and its record (issue 10, case 6)


async def test_jsonl_a_restarted_sink_does_not_append_a_delivery_already_in_the_file(
    make_jsonl_sink: Any, tmp_path: Path
) -> None:
    path = tmp_path / "runs.jsonl"
    await make_jsonl_sink(path).deliver(envelope("dlv_1"))
    await make_jsonl_sink(path).deliver(envelope("dlv_2"))  # each sink is a process that was killed after writing

    restarted = make_jsonl_sink(path)
    receipt = await restarted.deliver(envelope("dlv_1"))  # the retry of the delivery whose record was lost
    assert receipt.detail == "already in the file"
    await restarted.deliver(envelope("dlv_3"))
    await restarted.deliver(envelope("dlv_3"))  # the same process retries after a failed record
    assert [r["delivery_id"] for r in read_lines(path)] == ["dlv_1", "dlv_2", "dlv_3"]


async def test_jsonl_a_torn_last_line_is_cut_and_written_whole_on_the_retry(
    make_jsonl_sink: Any, tmp_path: Path
) -> None:
    path = tmp_path / "runs.jsonl"
    await make_jsonl_sink(path).deliver(envelope("dlv_1"))
    whole = json.dumps(envelope("dlv_2").body(), separators=(",", ":"), sort_keys=True)
    with path.open("a") as handle:
        handle.write(whole[: len(whole) // 2])  # killed in the middle of the write

    await make_jsonl_sink(path).deliver(envelope("dlv_2"))
    assert [r["delivery_id"] for r in read_lines(path)] == ["dlv_1", "dlv_2"]


async def test_jsonl_only_the_tail_is_read(
    make_jsonl_sink: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl_sink, "TAIL_LINES", 2)
    path = tmp_path / "runs.jsonl"
    writer = make_jsonl_sink(path, fsync=False)
    for i in range(4):
        await writer.deliver(envelope(f"dlv_{i}"))
    restarted = make_jsonl_sink(path, fsync=False)
    await restarted.deliver(envelope("dlv_3"))  # in the tail: skipped
    await restarted.deliver(envelope("dlv_0"))  # older than the tail: a replay far behind is written again
    assert [r["delivery_id"] for r in read_lines(path)] == ["dlv_0", "dlv_1", "dlv_2", "dlv_3", "dlv_0"]


async def test_jsonl_a_torn_line_longer_than_the_window_is_ended_not_cut(
    make_jsonl_sink: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.jsonl"
    await make_jsonl_sink(path).deliver(envelope("dlv_1"))
    monkeypatch.setattr(jsonl_sink, "TAIL_BYTES", 64)
    with path.open("a") as handle:
        handle.write('{"delivery_id":"dlv_2","output":"' + "z" * 200)  # torn, and longer than the window
    await make_jsonl_sink(path).deliver(envelope("dlv_2"))
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["delivery_id"] == "dlv_1"
    assert lines[1].endswith("z" * 10)  # kept (its start is out of reach) but ended
    assert json.loads(lines[2])["delivery_id"] == "dlv_2"
