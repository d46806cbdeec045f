"""GET /metrics after the quickstart: every family the operator dashboard uses, with sane values, no ids in labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.web.app import create_metrics_app
from tests.support import OPERATOR, SOURCE, Running, claim, example_settings, running_gateway

EXAMPLE_EVENT = Path(__file__).resolve().parents[2] / "examples" / "event.json"
CE = {"Content-Type": "application/cloudevents+json"}
FAMILIES = {
    "gateway_http_requests",
    "gateway_events",
    "gateway_webhook_verifications",
    "gateway_provider_call_seconds",
    "gateway_sink_call_seconds",
    "gateway_delivery_attempts",
    "gateway_runs_finished",
    "gateway_store_commit_seconds",
    "gateway_store_commit_batch_size",
    "gateway_runs",
    "gateway_jobs",
    "gateway_job_oldest_due_seconds",
    "gateway_deliveries",
    "gateway_review_queue",
    "gateway_breaker_state",
    "gateway_sink_disabled",
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], metric: str, **labels: str) -> float:
    return sum(v for (n, ls), v in found.items() if n == metric and all((k, labels[k]) in ls for k in labels))


async def scrape(client: httpx.AsyncClient, **headers: str) -> dict[Any, float]:
    answer = await client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    families = {f.name for f in text_string_to_metric_families(answer.text)}
    assert FAMILIES <= families, FAMILIES - families
    return samples(answer.text)


async def test_metrics_after_the_quickstart(gw: Running) -> None:
    accepted = await gw.client.post("/v1/events", content=EXAMPLE_EVENT.read_bytes(), headers={**SOURCE, **CE})
    assert accepted.status_code == 202
    await gw.client.post("/v1/events", content=EXAMPLE_EVENT.read_bytes(), headers={**SOURCE, **CE})  # duplicate
    await gw.client.post("/v1/events", content=b"{}", headers={"Authorization": "Bearer wrong", **CE})
    await gw.settle()
    found = await scrape(gw.client)
    assert value(found, "gateway_review_queue", flow="eligibility", sla_state="ok") == 1
    assert value(found, "gateway_runs", flow="eligibility", status="PENDING") == 1

    (review,) = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
    await claim(gw.client, review["id"])
    decided = await gw.client.post(
        f"/v1/reviews/{review['id']}/decision", json={"input": {"decision": "approve"}}, headers=OPERATOR
    )
    assert decided.status_code == 202
    await gw.settle()
    found = await scrape(gw.client)

    assert value(found, "gateway_events_total", source="demo", outcome="accepted") == 1
    assert value(found, "gateway_events_total", source="demo", outcome="duplicate") == 1
    assert value(found, "gateway_events_total", outcome="refused") == 1
    assert value(found, "gateway_webhook_verifications_total", provider="sohar", outcome="accepted") >= 1
    assert value(found, "gateway_provider_call_seconds_count", provider="sohar", operation="create_run") == 1
    assert value(found, "gateway_provider_call_seconds_count", provider="sohar", operation="resume_run") == 1
    assert value(found, "gateway_sink_call_seconds_count", sink="results", outcome="ok") == 1
    assert value(found, "gateway_delivery_attempts_total", sink="results", result="delivered") == 1
    assert value(found, "gateway_runs_finished_total", flow="eligibility", status="COMPLETE") == 1
    assert value(found, "gateway_runs", flow="eligibility") == 0
    assert value(found, "gateway_review_queue") == 0
    assert value(found, "gateway_store_commit_seconds_count") > 0
    assert value(found, "gateway_store_commit_batch_size_sum") >= value(found, "gateway_store_commit_batch_size_count")
    assert value(found, "gateway_breaker_state", target="sink", name="results") == 0
    assert value(found, "gateway_http_requests_total", method="POST", status="202") >= 2
    labels = {v for (_, ls) in found for _, v in ls}
    assert not any(v.startswith(("run_", "rev_", "dlv_", "evt_")) for v in labels)  # no ids in labels


async def test_unknown_names_are_reported_as_other(gw: Running) -> None:
    await gw.client.post("/v1/events/no-such-source", content=b"{}", headers=CE)
    await gw.client.post("/v1/webhooks/nope", content=b"{}")
    await gw.client.request("BREW", "/healthz")
    found = await scrape(gw.client)
    assert value(found, "gateway_events_total", source="other", outcome="refused") == 1
    assert value(found, "gateway_webhook_verifications_total", provider="other", outcome="not_found") == 1
    assert value(found, "gateway_http_requests_total", method="other") == 1


async def test_metrics_behind_their_own_token(tmp_path: Path) -> None:
    settings = example_settings(tmp_path, metrics={"token_env": "GATEWAY_DEMO_SINK_SECRET"})
    async with running_gateway(settings) as running:
        assert (await running.client.get("/metrics")).status_code == 401
        assert (await running.client.get("/metrics", headers=OPERATOR)).status_code == 401
        token = settings.metrics.token
        assert token is not None
        await scrape(running.client, Authorization=f"Bearer {token.reveal()}")


async def test_metrics_on_their_own_port_leave_the_main_app(tmp_path: Path) -> None:
    settings = example_settings(tmp_path, metrics={"port": 9464})
    async with running_gateway(settings) as running:
        assert (await running.client.get("/metrics")).status_code == 404
        side = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_metrics_app(running.services)), base_url="http://m"
        )
        async with side:
            await scrape(side)
            assert (await side.get("/v1/runs", headers=OPERATOR)).status_code == 404


def test_the_grafana_dashboard_uses_only_metrics_that_exist() -> None:
    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(exprs) >= 10
    names = {"gateway_" + e.split("gateway_", 1)[1].split("{")[0].split("[")[0].split(")")[0] for e in exprs}
    known = (
        FAMILIES | {f"{f}_total" for f in FAMILIES} | {f"{f}_{s}" for f in FAMILIES for s in ("bucket", "count", "sum")}
    )
    assert names <= known, names - known
