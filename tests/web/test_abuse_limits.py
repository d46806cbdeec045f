"""A14: per-source event rate limits and failed-auth throttling per client address, on a frozen clock."""

from __future__ import annotations

import json
from pathlib import Path

from tests.desk.support import add_operator, browser_client, ui_login
from tests.support import OPERATOR, SOURCE, FrozenClock, example_settings, running_gateway
from tests.web.helpers import flow_updated, svix_headers

EVENT = json.loads((Path(__file__).resolve().parents[2] / "examples" / "event.json").read_text())
CE = {"Content-Type": "application/cloudevents+json"}
BAD = {"Authorization": "Bearer not-the-token"}


def event(n: int) -> dict[str, object]:
    return {**EVENT, "id": f"evt-{n}"}


async def count_events(running: object) -> int:
    async with running.services.store.db.read() as tx:  # type: ignore[attr-defined]
        rows = await tx.fetchall("SELECT COUNT(*) AS n FROM events")
    return int(rows[0]["n"])


async def test_repeated_bad_tokens_get_429_with_retry_after(tmp_path: Path) -> None:
    clock = FrozenClock()
    settings = example_settings(tmp_path, limits={"failed_auth": {"per_second": 0.1, "burst": 3}})
    async with running_gateway(settings, clock=clock) as gw:
        paths = [("GET", "/v1/runs"), ("POST", "/v1/events"), ("POST", "/v1/reviews/rev_x/decision")]
        statuses = [(await gw.client.request(m, p, headers=BAD, json={})).status_code for m, p in paths]
        assert statuses == [401, 401, 401]
        blocked = await gw.client.get("/v1/runs", headers=BAD)
        assert blocked.status_code == 429
        assert blocked.headers["retry-after"] == "10"
        assert blocked.json() == {
            "error": {"code": "rate_limited", "message": "too many failed authentication attempts"}
        }
        assert (await gw.client.get("/v1/runs", headers=OPERATOR)).status_code == 200  # good tokens pass
        assert (await gw.client.get("/healthz")).status_code == 200
        clock.advance(9)
        assert (await gw.client.get("/v1/runs", headers=BAD)).headers["retry-after"] == "1"
        clock.advance(10)
        assert (await gw.client.get("/v1/runs", headers=BAD)).status_code == 401
        assert (await gw.client.get("/v1/runs", headers=BAD)).status_code == 429


async def test_bad_tokens_never_block_good_credentials_from_the_same_address(tmp_path: Path) -> None:
    """Issue 11 point 10: 21 bad bearer tokens (the default burst is 20), then good credentials of each kind."""
    clock = FrozenClock()
    async with running_gateway(example_settings(tmp_path), clock=clock) as gw:
        codes = [(await gw.client.get("/v1/runs", headers=BAD)).status_code for _ in range(21)]
        assert codes == [401] * 20 + [429]
        body = flow_updated("prv-unknown", "COMPLETE")
        signed = await gw.client.post(
            "/v1/webhooks/sohar", content=body, headers=svix_headers(body, "msg_1", int(clock.now().timestamp()))
        )
        assert signed.status_code in (200, 202), signed.text
        assert (await gw.client.post("/v1/events", json=event(1), headers={**SOURCE, **CE})).status_code == 202
        assert (await gw.client.get("/v1/runs", headers=OPERATOR)).status_code == 200
        assert (await gw.client.get("/v1/runs", headers=BAD)).status_code == 429  # the bad ones stay blocked


async def test_failed_logins_block_the_login_form_before_the_password_is_checked(tmp_path: Path) -> None:
    clock = FrozenClock()
    settings = example_settings(tmp_path, limits={"failed_auth": {"per_second": 0.1, "burst": 2}})
    async with running_gateway(settings, clock=clock) as gw, browser_client(gw) as browser:
        await add_operator(gw, "bea", "reviewer")
        codes = [(await ui_login(browser, "bea", password="wrong")).status_code for _ in range(2)]
        assert codes == [401, 401]
        blocked = await ui_login(browser, "bea")  # the right password, refused unchecked: no oracle
        assert blocked.status_code == 429
        assert blocked.headers["retry-after"] == "10"
        assert (await gw.client.get("/v1/runs", headers=OPERATOR)).status_code == 200  # tokens: another bucket
        clock.advance(10)
        assert (await ui_login(browser, "bea")).status_code == 303


async def test_the_sandbox_token_endpoint_is_throttled(tmp_path: Path) -> None:
    clock = FrozenClock()
    settings = example_settings(tmp_path, limits={"failed_auth": {"per_second": 0.1, "burst": 2}})
    good = {"client_id": "sandbox-client", "client_secret": "sandbox-secret-for-local-development-only"}
    async with running_gateway(settings, clock=clock) as gw:
        url = "/sandbox/sohar/oauth/token"
        codes = [(await gw.client.post(url, json={**good, "client_secret": "guess"})).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        assert (await gw.client.post(url, json=good)).status_code == 200


async def test_bad_webhook_signatures_count_as_failed_auth(tmp_path: Path) -> None:
    clock = FrozenClock()
    settings = example_settings(tmp_path, limits={"failed_auth": {"per_second": 0.5, "burst": 2}})
    ts = str(int(clock.now().timestamp()))
    headers = {"webhook-id": "msg_1", "webhook-timestamp": ts, "webhook-signature": "v1,AAAA"}
    async with running_gateway(settings, clock=clock) as gw:
        codes = [
            (await gw.client.post("/v1/webhooks/sohar", content=b"{}", headers=headers)).status_code for _ in range(3)
        ]
        assert codes == [401, 401, 429]


async def test_good_requests_are_not_throttled(tmp_path: Path) -> None:
    settings = example_settings(tmp_path, limits={"failed_auth": {"per_second": 0.1, "burst": 1}})
    async with running_gateway(settings, clock=FrozenClock()) as gw:
        for _ in range(30):
            assert (await gw.client.get("/v1/runs", headers=OPERATOR)).status_code == 200


async def test_per_source_rate_limit(tmp_path: Path) -> None:
    clock = FrozenClock()
    data_sources = {
        "demo": {
            "auth": "bearer",
            "token_env": "GATEWAY_DEMO_SOURCE_TOKEN",
            "rate_limit": {"per_second": 1, "burst": 2},
        }
    }
    settings = example_settings(tmp_path, sources=data_sources)
    async with running_gateway(settings, clock=clock) as gw:
        codes = [
            (await gw.client.post("/v1/events", json=event(n), headers={**SOURCE, **CE})).status_code for n in range(3)
        ]
        assert codes == [202, 202, 429]
        limited = await gw.client.post("/v1/events", json=event(9), headers={**SOURCE, **CE})
        assert limited.headers["retry-after"] == "1"
        assert await count_events(gw) == 2
        clock.advance(1)
        assert (await gw.client.post("/v1/events", json=event(3), headers={**SOURCE, **CE})).status_code == 202
        assert await count_events(gw) == 3
        # rate-limited requests are not failed authentication: other callers are unaffected
        assert (await gw.client.get("/v1/runs", headers=OPERATOR)).status_code == 200


async def test_per_source_rate_limit_on_a_signed_source(tmp_path: Path) -> None:
    from gateway.config.settings import parse_settings
    from gateway.core import signing
    from tests.support import example_data

    clock = FrozenClock()
    secret = signing.generate_secret(b"k" * 32)
    data = example_data(tmp_path)
    data["sources"]["signed"] = {
        "auth": "standard-webhooks",
        "secrets_env": ["SIGNED"],
        "rate_limit": {"per_second": 0.5, "burst": 1},
    }
    async with running_gateway(parse_settings(data, {"SIGNED": secret}), clock=clock) as gw:

        async def send(n: int) -> int:
            body = json.dumps(event(n)).encode()
            ts = int(clock.now().timestamp())
            headers = {**CE, **signing.sign_headers(signing.parse_signing_key(secret), f"m{n}", ts, body)}
            return (await gw.client.post("/v1/events/signed", content=body, headers=headers)).status_code

        assert [await send(1), await send(2)] == [202, 429]
        clock.advance(2)
        assert await send(3) == 202
        assert await count_events(gw) == 2


async def test_failed_operator_logins_are_throttled(tmp_path: Path) -> None:
    clock = FrozenClock()
    settings = example_settings(tmp_path, limits={"failed_auth": {"per_second": 0.1, "burst": 2}})
    async with running_gateway(settings, clock=clock) as gw:
        page = await gw.client.get("/ui/login")
        csrf = page.cookies.get("gw_login_csrf") or next(iter(page.cookies.values()), "")
        form = {"name": "mallory", "password": "guess-guess-guess", "login_csrf": csrf}
        codes = [(await gw.client.post("/ui/login", data=form)).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
