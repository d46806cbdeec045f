"""HTTP-level limits against the real server process (issue 11 point 9): header size, header and body read
timeouts, the connection cap, and malformed HTTP answered in the JSON error shape."""

from __future__ import annotations

import json
import select
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.security.server import Server, read_answer, running_server, status_of

pytestmark = pytest.mark.e2e

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
HEADER_BYTES = 16 * 1024
SLACK = 10.0  # for a busy machine: an answer is due within the timeout plus this
LIMITS = f"header_timeout = {HEADER_TIMEOUT}\nbody_timeout = {BODY_TIMEOUT}\nheader_bytes = {HEADER_BYTES}\n"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="gateway-limits-") as name, running_server(Path(name), server=LIMITS) as s:
        yield s


def json_error(answer: bytes) -> dict[str, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    error: dict[str, str] = json.loads(body)["error"]
    assert set(error) == {"code", "message"}
    return error


def endless_header(server: Server, sent: list[int]) -> None:
    """Send one header line that never ends, 64 KiB at a time, up to 50 MiB; record how much got through."""
    with server.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Endless: ")
        total = 0
        try:
            while total < 50 * MiB:
                sock.sendall(b"a" * 65536)
                total += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        sent.append(total)
        answer = read_answer(sock)
        assert answer == b"" or status_of(answer) == 431, answer[:200]


def test_six_endless_headers_are_cut_off_without_growing_the_server(server: Server) -> None:
    before = server.rss_kib()
    sent: list[int] = []
    threads = [threading.Thread(target=endless_header, args=(server, sent)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(sent) == 6
    assert max(sent) < 8 * MiB  # the server stopped reading long before 50 MiB (socket buffers hold the rest)
    assert server.rss_kib() - before < 32 * 1024  # was +300 MiB
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_a_header_over_the_limit_gets_431_in_the_json_shape(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Big: " + b"a" * HEADER_BYTES + b"\r\n\r\n")
        answer = read_answer(sock)
    assert status_of(answer) == 431
    assert json_error(answer)["code"] == "headers_too_large"
    small = httpx.get(f"{server.url}/healthz", headers={"X-Fine": "a" * (HEADER_BYTES // 2)}, timeout=10)
    assert small.status_code == 200


def test_slow_loris_headers_are_dropped_at_the_header_timeout(server: Server) -> None:
    files_before = server.open_files()
    socks = [server.connect() for _ in range(100)]
    request = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Drip: " + b"a" * 1000
    started = time.monotonic()
    closed_at: dict[socket.socket, float] = {}
    answers: dict[socket.socket, bytes] = {}
    sent = 0
    while len(closed_at) < len(socks) and time.monotonic() - started < HEADER_TIMEOUT + SLACK:
        for sock in socks:  # one byte a second on every connection
            if sock not in closed_at:
                try:
                    sock.send(request[sent : sent + 1])
                except (BrokenPipeError, ConnectionResetError):
                    closed_at[sock] = time.monotonic() - started
        sent += 1
        readable, _, _ = select.select([s for s in socks if s not in closed_at], [], [], 1.0)
        for sock in readable:
            answers[sock] = read_answer(sock)
            closed_at[sock] = time.monotonic() - started
    for sock in socks:
        sock.close()
    assert len(closed_at) == len(socks), f"{len(socks) - len(closed_at)} connections still open"
    assert max(closed_at.values()) < HEADER_TIMEOUT + SLACK
    timed_out = [a for a in answers.values() if a]
    assert timed_out and all(status_of(a) == 408 for a in timed_out)
    assert json_error(timed_out[0])["code"] == "request_timeout"
    deadline = time.monotonic() + SLACK
    while server.open_files() > files_before + 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.open_files() <= files_before + 5


BODY_PATHS = [
    ("/v1/webhooks/sohar", b"content-type: application/json\r\n"),
    ("/v1/events/demo", b"authorization: Bearer demo-token\r\ncontent-type: application/cloudevents+json\r\n"),
    ("/ui/login", b"content-type: application/x-www-form-urlencoded\r\n"),
]


@pytest.mark.parametrize(("path", "headers"), BODY_PATHS, ids=[p for p, _ in BODY_PATHS])
def test_a_body_that_stops_gets_408_at_the_body_timeout(server: Server, path: str, headers: bytes) -> None:
    with server.connect() as sock:
        started = time.monotonic()
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: gateway\r\n".encode() + headers)
        sock.sendall(b"content-length: 1000\r\n\r\n" + b"0123456789")
        answer = read_answer(sock)
        elapsed = time.monotonic() - started
    assert BODY_TIMEOUT * 0.9 <= elapsed < BODY_TIMEOUT + SLACK  # answered because of the timeout, in time
    assert status_of(answer) == 408, answer[:300]
    assert json_error(answer)["code"] == "request_timeout"


def test_a_big_body_sent_in_time_is_still_read(server: Server) -> None:
    data = {"patient": {"id": "P-1"}, "pad": "x" * (MiB - 300)}
    event = {"specversion": "1.0", "id": "big", "source": "/t", "type": "com.example.none", "data": data}
    headers = {"Authorization": "Bearer demo-token", "Content-Type": "application/cloudevents+json"}
    answer = httpx.post(f"{server.url}/v1/events", json=event, headers=headers, timeout=30)
    assert answer.status_code == 202


def malformed_event(ce_id: str) -> bytes:
    """A well-formed CloudEvent for the demo source: only the framing around it is wrong."""
    event = {"specversion": "1.0", "id": ce_id, "source": "/t", "type": "com.example.none", "data": {}}
    return json.dumps(event).encode()


def framed(name: str, body: bytes) -> bytes:
    """The headers after the request line and Host, and the body, of each kind of malformed request."""
    length = str(len(body)).encode()
    chunked = hex(len(body))[2:].encode() + b"\r\n" + body + b"\r\n0\r\n\r\n"
    return {
        "two Content-Length": b"content-length: " + length + b"\r\ncontent-length: 6\r\n\r\n" + body,
        "two equal Content-Length": b"content-length: "
        + length
        + b"\r\ncontent-length: "
        + length
        + b"\r\n\r\n"
        + body,
        "Content-Length and Transfer-Encoding": b"content-length: "
        + length
        + b"\r\ntransfer-encoding: chunked\r\n\r\n"
        + chunked,
        "two Transfer-Encoding": b"transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n" + chunked,
        "Transfer-Encoding that is not chunked last": b"transfer-encoding: chunked, gzip\r\n\r\n" + chunked,
        "a control byte in a header": b"x-bad: a\x01b\r\ncontent-length: " + length + b"\r\n\r\n" + body,
        "a control byte in a header name": b"x-b\x01ad: a\r\ncontent-length: " + length + b"\r\n\r\n" + body,
        "a Content-Length that is no number": b"content-length: " + length + b"x\r\n\r\n" + body,
        "a negative Content-Length": b"content-length: -" + length + b"\r\n\r\n" + body,
    }[name]


MALFORMED = [
    "two Content-Length",
    "two equal Content-Length",
    "Content-Length and Transfer-Encoding",
    "two Transfer-Encoding",
    "Transfer-Encoding that is not chunked last",
    "a control byte in a header",
    "a control byte in a header name",
    "a Content-Length that is no number",
    "a negative Content-Length",
]
SOURCE_HEADERS = b"authorization: Bearer demo-token\r\ncontent-type: application/cloudevents+json\r\n"


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_http_gets_400_in_the_json_shape_and_nothing_is_stored(server: Server, name: str) -> None:
    ce_id = "malformed-" + name.replace(" ", "-")
    with server.connect() as sock:
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: gateway\r\n" + SOURCE_HEADERS + framed(name, malformed_event(ce_id))
        )
        answer = read_answer(sock)
    assert status_of(answer) == 400, answer[:300]
    assert json_error(answer) == {"code": "bad_request", "message": "malformed HTTP request"}
    with sqlite3.connect(f"file:{server.directory / 'gateway.db'}?mode=ro", uri=True) as db:
        assert db.execute("SELECT COUNT(*) FROM events WHERE ce_id = ?", (ce_id,)).fetchone() == (0,)


def test_the_same_event_framed_well_is_stored(server: Server) -> None:
    """The control for the test above: its query would see the event had the server taken it."""
    body = malformed_event("framed-well")
    with server.connect() as sock:
        head = b"POST /v1/events HTTP/1.1\r\nHost: gateway\r\nconnection: close\r\n" + SOURCE_HEADERS
        sock.sendall(head + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        answer = read_answer(sock)
    assert status_of(answer) == 202, answer[:300]
    with sqlite3.connect(f"file:{server.directory / 'gateway.db'}?mode=ro", uri=True) as db:
        assert db.execute("SELECT COUNT(*) FROM events WHERE ce_id = 'framed-well'").fetchone() == (1,)


def test_connections_over_the_cap_get_503_and_the_server_recovers(tmp_path: Path) -> None:
    with running_server(tmp_path, server="max_connections = 20\nheader_timeout = 120\n") as capped:
        idle: list[socket.socket] = []
        refused = b""
        while not refused and len(idle) < 40:
            sock = capped.connect()
            if select.select([sock], [], [], 0.05)[0]:
                refused = read_answer(sock)
                sock.close()
            else:
                idle.append(sock)
        assert status_of(refused) == 503, refused[:300]
        assert json_error(refused)["code"] == "too_many_connections"
        assert len(idle) <= 20
        for sock in idle:
            sock.close()
        deadline = time.monotonic() + SLACK
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{capped.url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not answer again after the idle connections closed")


CAP = 50


def test_ten_times_the_cap_of_slow_loris_connections_leave_the_server_at_its_cap(tmp_path: Path) -> None:
    """500 connections (ten times max_connections) each send headers one byte a second: the server holds at most
    the cap open (file handles bounded throughout), answers the rest 503 at once, drops the held ones with 408 at
    the header timeout, and serves again afterwards."""
    header_timeout = 4.0
    limits = f"max_connections = {CAP}\nheader_timeout = {header_timeout}\n"
    with running_server(tmp_path, server=limits) as capped:
        files_before = capped.open_files()
        socks = [capped.connect() for _ in range(10 * CAP)]
        request = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Drip: " + b"a" * 1000
        started = time.monotonic()
        answers: dict[socket.socket, bytes] = {}
        most_files = 0
        sent = 0
        while len(answers) < len(socks) and time.monotonic() - started < header_timeout + SLACK:
            for sock in socks:  # one byte a second on every connection still open
                if sock not in answers:
                    try:
                        sock.send(request[sent : sent + 1])
                    except (BrokenPipeError, ConnectionResetError):
                        answers[sock] = read_answer(sock)
            sent += 1
            step_ends = time.monotonic() + 1.0
            while (left := step_ends - time.monotonic()) > 0:
                readable, _, _ = select.select([s for s in socks if s not in answers], [], [], left)
                for sock in readable:
                    answers[sock] = read_answer(sock)
                most_files = max(most_files, capped.open_files())
        for sock in socks:
            sock.close()
        statuses = [status_of(answer) for answer in answers.values()]
        assert len(answers) == len(socks), f"{len(socks) - len(answers)} connections still open"
        assert most_files <= files_before + CAP + 10, most_files  # was one file handle per connection
        assert statuses.count(503) >= 9 * CAP - 10  # refused at once (a few may have been refused without a word)
        assert statuses.count(408) <= CAP
        assert set(statuses) <= {503, 408, None}
        refused = next(a for a in answers.values() if status_of(a) == 503)
        assert json_error(refused)["code"] == "too_many_connections"
        deadline = time.monotonic() + SLACK
        while capped.open_files() > files_before + 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert capped.open_files() <= files_before + 5
        assert httpx.get(f"{capped.url}/healthz", timeout=10).status_code == 200
