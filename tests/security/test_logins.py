"""Operator logins against the real server (issue 11 point 2): timing does not tell which names exist, and
password hashing does not stall the event loop.

These are the issue's two acceptance tests that measure time. They compare medians of many interleaved
samples taken in the same run (never a fixed speed), so a busy machine slows both sides alike.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.security.server import PASSWORD, Server, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRIES = 50


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # failed_auth off: these tests fail a hundred logins on purpose (the throttle has its own tests)
    with running_server(tmp_path_factory.mktemp("logins"), failed_auth="false") as running:
        running.add_operator("alice")
        yield running


def login_form(client: httpx.Client) -> str:
    page = client.get("/ui/login")
    found = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def timed_login(client: httpx.Client, token: str, name: str, password: str) -> tuple[int, float]:
    started = time.perf_counter()
    answer = client.post("/ui/login", data={"login_csrf": token, "name": name, "password": password})
    return answer.status_code, time.perf_counter() - started


def test_a_wrong_password_and_an_unknown_name_take_the_same_time(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert timed_login(client, login_form(client), "alice", PASSWORD)[0] == 303  # the password works
    with httpx.Client(base_url=server.url, timeout=60) as client:
        token = login_form(client)
        wrong, unknown = [], []
        for n in range(TRIES + 3):  # interleaved, so load on the machine hits both alike
            status_wrong, took_wrong = timed_login(client, token, "alice", f"wrong password {n}")
            status_unknown, took_unknown = timed_login(client, token, f"nobody-{n}", f"wrong password {n}")
            assert (status_wrong, status_unknown) == (401, 401)
            if n >= 3:  # the first few warm up connections and the dummy hash
                wrong.append(took_wrong)
                unknown.append(took_unknown)
    slower, faster = sorted([statistics.median(wrong), statistics.median(unknown)], reverse=True)
    assert slower <= 1.2 * faster, f"medians: wrong password {statistics.median(wrong):.4f} s, unknown name " + (
        f"{statistics.median(unknown):.4f} s"
    )


def health_latency(client: httpx.Client) -> float:
    started = time.perf_counter()
    assert client.get("/healthz").status_code == 200
    return time.perf_counter() - started


def test_health_checks_are_answered_while_ten_logins_hash(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as health:
        baseline = statistics.median(health_latency(health) for _ in range(30))
        clients = [httpx.Client(base_url=server.url, timeout=120) for _ in range(10)]
        tokens = [login_form(client) for client in clients]
        start = threading.Barrier(11)

        def log_in(client: httpx.Client, token: str) -> None:
            start.wait()
            assert timed_login(client, token, "alice", "a wrong password")[0] == 401

        logins = [threading.Thread(target=log_in, args=pair) for pair in zip(clients, tokens, strict=True)]
        for thread in logins:
            thread.start()
        start.wait()
        during = []
        while any(thread.is_alive() for thread in logins):
            during.append(health_latency(health))
        for thread in logins:
            thread.join()
        for client in clients:
            client.close()
    assert len(during) >= 5, "the logins finished before the health checks could be measured"
    assert statistics.median(during) < baseline + 0.020, (
        f"health check median {statistics.median(during) * 1000:.1f} ms during logins, "
        f"{baseline * 1000:.1f} ms before ({len(during)} samples)"
    )
