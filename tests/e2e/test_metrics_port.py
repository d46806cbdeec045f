"""``[metrics] port`` and ``token_env`` against the real server process (issue 13): ``gateway serve`` with a
separate metrics port answers /metrics there (behind its token) and not on the main port."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.security.server import free_port, running_server

pytestmark = pytest.mark.e2e

TOKEN = "metrics-token-for-the-test"
ENVIRON = {"GATEWAY_METRICS_TOKEN": TOKEN}
EVENT = {
    "specversion": "1.0",
    "id": "metrics-port-1",
    "source": "/t",
    "type": "com.example.none",
    "data": {},
}
SOURCE = {"Authorization": "Bearer demo-token", "Content-Type": "application/cloudevents+json"}


def test_a_separate_metrics_port_serves_metrics_behind_its_token_and_the_main_port_does_not(tmp_path: Path) -> None:
    port = free_port()
    extra = f'\n[metrics]\nport = {port}\ntoken_env = "GATEWAY_METRICS_TOKEN"\n'
    with running_server(tmp_path, extra=extra, environ=ENVIRON) as server:
        assert httpx.post(f"{server.url}/v1/events", json=EVENT, headers=SOURCE, timeout=10).status_code == 202
        scraper = f"http://127.0.0.1:{port}/metrics"
        scraped = httpx.get(scraper, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        assert 'gateway_events_total{outcome="accepted",reason="",source="demo"} 1.0' in scraped.text
        assert "# TYPE gateway_store_commit_seconds histogram" in scraped.text
        assert httpx.get(scraper, timeout=10).status_code == 401
        assert httpx.get(scraper, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
        on_main = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert on_main.status_code == 404
        assert "gateway_events_total" not in on_main.text
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 404  # metrics alone there
        assert httpx.get(f"http://127.0.0.1:{port}/v1/runs", timeout=10).status_code == 404


def test_without_a_port_metrics_are_on_the_main_port_behind_the_token(tmp_path: Path) -> None:
    extra = '\n[metrics]\ntoken_env = "GATEWAY_METRICS_TOKEN"\n'
    with running_server(tmp_path, extra=extra, environ=ENVIRON) as server:
        assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 401
        scraped = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert scraped.status_code == 200 and "# TYPE gateway_events_total counter" in scraped.text
