"""Access: every route declares its scope (A2), API keys (A1), UI logins (A5, A6), CSRF (A4), headers (A7)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from starlette.routing import Route

from gateway.desk import access
from gateway.web import api, guard, ui
from tests.desk.support import add_operator, api_key, browser_client, csrf_of, desk_settings, open_review, ui_login
from tests.support import OPERATOR, FrozenClock, claim, running_gateway

OPERATOR_SCOPES = {(op.method, op.path): op.scope for op in api.OPERATIONS if op.scope not in guard.NOT_OPERATOR_SCOPES}


def test_the_operator_scopes_are_the_declared_ones() -> None:
    assert len(OPERATOR_SCOPES) >= 30
    assert OPERATOR_SCOPES[("GET", "/v1/audit/verify")] == access.ADMIN
    assert OPERATOR_SCOPES[("POST", "/v1/reviews/bulk")] == access.REVIEWS_DECIDE
    assert OPERATOR_SCOPES[("POST", "/v1/deliveries/replay")] == access.DELIVERIES_REPLAY
    assert OPERATOR_SCOPES[("POST", "/v1/runs/{run_id}/adopt")] == access.RUNS_RETRY


async def test_every_route_declares_what_guards_it(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        found = guard.walk(gw.app.routes)
        assert found
        undeclared = [(path, methods) for path, methods, endpoint in found if not guard.declared(endpoint)]
        assert undeclared == []
        ui_paths = {path for path, _, _ in found if path.startswith("/ui")}
        assert {"/ui/reviews", "/ui/reviews/{review_id}", "/ui/runs", "/ui/deliveries", "/ui/login"} <= ui_paths


def test_a_route_without_a_declared_scope_stops_the_app_from_building() -> None:
    async def handler(request):  # pragma: no cover - never called
        raise AssertionError

    with pytest.raises(RuntimeError, match="no declared scope"):
        guard.declare([Route("/v1/secret", handler, methods=["GET"])])


async def test_each_scoped_route_refuses_a_key_without_its_scope(tmp_path: Path) -> None:
    no_throttle = {"event_body_bytes": 1 << 20, "failed_auth": False}  # this test sends many 401s on purpose
    async with running_gateway(desk_settings(tmp_path, limits=no_throttle)) as gw:
        await add_operator(gw, "root", "admin")
        for (method, path), scope in OPERATOR_SCOPES.items():
            url = path.replace("{run_id}", "run_x").replace("{review_id}", "rev_x").replace("{delivery_id}", "dlv_x")
            lacking = await api_key(gw, "root", *(set(access.SCOPES) - {scope, access.ADMIN}))
            holding = await api_key(gw, "root", scope)
            refused = await gw.client.request(method, url, headers=lacking, json={})
            allowed = await gw.client.request(method, url, headers=holding, json={})
            assert refused.status_code == 403, (method, path)
            assert allowed.status_code not in (401, 403), (method, path, allowed.text)
            assert (await gw.client.request(method, url)).status_code == 401


async def test_keys_are_shown_once_stored_hashed_and_refused_when_revoked_or_expired(tmp_path: Path) -> None:
    clock = FrozenClock()
    async with running_gateway(desk_settings(tmp_path), clock=clock) as gw:
        await add_operator(gw, "bea", "reviewer")
        key, token = await gw.services.desk.gatekeeper.create_key("bea", ["reviews:read"], 30, actor="test")
        assert token.startswith(f"gw_{key.id}_")
        headers = {"Authorization": f"Bearer {token}"}
        assert (await gw.client.get("/v1/reviews", headers=headers)).status_code == 200
        secret = token.split("_", 2)[2]
        assert secret.encode() not in (tmp_path / "gateway.db").read_bytes()
        assert (await gw.client.get("/v1/runs", headers=headers)).status_code == 403

        tampered = {"Authorization": f"Bearer {token[:-2]}xx"}
        assert (await gw.client.get("/v1/reviews", headers=tampered)).status_code == 401

        await gw.services.desk.gatekeeper.revoke_key(key.id, actor="test")
        assert (await gw.client.get("/v1/reviews", headers=headers)).status_code == 401

        short = await api_key(gw, "bea", "reviews:read", days=1)
        assert (await gw.client.get("/v1/reviews", headers=short)).status_code == 200
        clock.advance(86_401)
        assert (await gw.client.get("/v1/reviews", headers=short)).status_code == 401


async def test_a_key_cannot_hold_more_than_its_operators_roles_allow(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        await add_operator(gw, "vic", "viewer")
        from gateway.domain import errors

        with pytest.raises(errors.Forbidden):
            await gw.services.desk.gatekeeper.create_key("vic", ["reviews:decide"], 30, actor="test")
        with pytest.raises(errors.InvalidInput):
            await gw.services.desk.gatekeeper.create_key("vic", ["reviews:read"], 400, actor="test")


async def test_login_cookie_is_hardened_and_the_json_api_ignores_it(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw, browser_client(gw) as browser:
        await add_operator(gw, "bea", "reviewer")
        answer = await ui_login(browser, "bea")
        assert answer.status_code == 303
        cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("gw_session="))
        assert {"HttpOnly", "Path=/", "SameSite=lax"} <= {part.strip() for part in cookie.split(";")}
        assert (await browser.get("/ui/reviews")).status_code == 200
        assert (await browser.get("/v1/reviews")).status_code == 401


async def test_over_https_the_login_cookie_is_host_prefixed_and_secure(tmp_path: Path) -> None:
    settings = desk_settings(tmp_path, server={"public_url": "https://gateway.test", "port": 8000})
    async with running_gateway(settings) as gw, browser_client(gw, "https://gateway.test") as browser:
        await add_operator(gw, "bea", "reviewer")
        answer = await ui_login(browser, "bea")
        cookie = next(h for h in answer.headers.get_list("set-cookie") if "gw_session=" in h)
        assert cookie.startswith("__Host-gw_session=")
        assert "Secure" in cookie
        assert "max-age=31536000" in answer.headers["strict-transport-security"]


async def test_a_wrong_password_is_refused_and_recorded(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw, browser_client(gw) as browser:
        await add_operator(gw, "bea", "reviewer")
        answer = await ui_login(browser, "bea", password="wrong")
        assert answer.status_code == 401
        assert "gw_session" not in answer.headers.get("set-cookie", "")
        rows = sqlite3.connect(tmp_path / "gateway.db").execute("SELECT actor, action FROM audit_log").fetchall()
        assert ("bea", "login_failed") in rows


async def test_form_posts_without_the_logins_csrf_token_or_from_another_site_are_refused(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw, browser_client(gw) as bea, browser_client(gw) as ann:
        review_id = await open_review(gw)
        await add_operator(gw, "bea", "reviewer")
        await add_operator(gw, "ann", "reviewer")
        await ui_login(bea, "bea")
        await ui_login(ann, "ann")
        page = await bea.get(f"/ui/reviews/{review_id}")
        token = csrf_of(page.text)
        other_token = csrf_of((await ann.get(f"/ui/reviews/{review_id}")).text)
        url = f"/ui/reviews/{review_id}/claim"

        assert (await bea.post(url, data={})).status_code == 403
        assert (await bea.post(url, data={"csrf": other_token})).status_code == 403
        cross = await bea.post(url, data={"csrf": token}, headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403
        assert (await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)).json()["claimed_by"] is None

        done = await bea.post(url, data={"csrf": token}, headers={"Sec-Fetch-Site": "same-origin"})
        assert done.status_code == 303
        assert (await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)).json()["claimed_by"] == "bea"


async def test_idle_and_absolute_timeouts_end_the_login(tmp_path: Path) -> None:
    clock = FrozenClock()
    settings = desk_settings(tmp_path, ui={"session_idle": 900, "session_max": 3600})
    async with running_gateway(settings, clock=clock) as gw, browser_client(gw) as browser:
        await add_operator(gw, "bea", "reviewer")
        await ui_login(browser, "bea")
        clock.advance(899)
        assert (await browser.get("/ui/reviews")).status_code == 200
        clock.advance(901)
        idle = await browser.get("/ui/reviews")
        assert (idle.status_code, idle.headers["location"]) == (303, "/ui/login")

        await ui_login(browser, "bea")
        for _ in range(5):
            clock.advance(600)
            assert (await browser.get("/ui/reviews")).status_code == 200
        clock.advance(600)  # active all along, but 3600 s after the login
        assert (await browser.get("/ui/reviews")).status_code == 303


async def test_logout_revokes_the_login_even_for_a_copied_cookie(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw, browser_client(gw) as browser:
        await add_operator(gw, "bea", "reviewer")
        await ui_login(browser, "bea")
        copied = dict(browser.cookies)
        token = csrf_of((await browser.get("/ui/reviews")).text)
        assert (await browser.post("/ui/logout", data={"csrf": token})).status_code == 303
        async with browser_client(gw) as thief:
            thief.cookies.update(copied)
            replay = await thief.get("/ui/reviews")
            assert (replay.status_code, replay.headers["location"]) == (303, "/ui/login")


async def test_every_ui_response_carries_the_security_headers(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw, browser_client(gw) as browser:
        review_id = await open_review(gw)
        await add_operator(gw, "bea", "reviewer")
        responses = [await browser.get("/ui/login"), await browser.get("/ui/reviews")]  # the second redirects
        await ui_login(browser, "bea")
        for url in ("/ui/reviews", f"/ui/reviews/{review_id}", "/ui/runs", "/ui/deliveries", "/ui/reviews/rev_nope"):
            responses.append(await browser.get(url))
        responses.append(await browser.get("/ui/static/app.css"))
        for response in responses:
            csp = response.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
        assert responses[3].headers["cache-control"] == "no-store"  # the item page (PHI)
        assert responses[-2].status_code == 404


async def test_unmatched_ui_paths_carry_the_security_headers_too(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw, browser_client(gw) as browser:
        answers = [await browser.get(path) for path in ("/ui/nope", "/ui/reviews/a/b/c", "/ui/static/nope.js")]
        answers.append(await browser.delete("/ui/login"))
        assert [a.status_code for a in answers] == [404, 404, 404, 405]
        for answer in answers:
            assert answer.headers["content-security-policy"] == ui.CSP
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["cache-control"] == "no-store"
        assert "content-security-policy" not in (await browser.get("/v1/nope")).headers  # the JSON API's own


async def test_the_item_page_shows_the_payload_only_to_allowed_roles_and_records_the_view(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw, browser_client(gw) as bea, browser_client(gw) as vic:
        review_id = await open_review(gw, patient="PHI-CANARY-1")
        await add_operator(gw, "bea", "reviewer")
        await add_operator(gw, "vic", "viewer")
        await ui_login(bea, "bea")
        await ui_login(vic, "vic")
        listed = (await bea.get("/ui/reviews")).text
        assert "Eligibility for PHI-CANARY-1 (PAYER-42)" in listed  # the flow's subject line, not the payload
        assert "eligible" not in listed
        assert "PHI-CANARY-1" not in (await vic.get("/ui/reviews")).text  # a viewer sees no subject either
        assert "PHI-CANARY-1" in (await bea.get(f"/ui/reviews/{review_id}")).text
        hidden = await vic.get(f"/ui/reviews/{review_id}")
        assert hidden.status_code == 200
        assert "PHI-CANARY-1" not in hidden.text
        assert 'data-testid="decide-form"' not in hidden.text
        rows = sqlite3.connect(tmp_path / "gateway.db").execute(
            "SELECT actor FROM audit_log WHERE action = 'viewed_payload'"
        )
        assert [r[0] for r in rows] == ["bea"]


async def test_deciding_through_the_form_completes_the_run(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw, browser_client(gw) as browser:
        review_id = await open_review(gw)
        await add_operator(gw, "bea", "reviewer")
        await ui_login(browser, "bea")
        page = await browser.get(f"/ui/reviews/{review_id}")
        assert 'data-testid="decide-form"' not in page.text  # claim first
        claimed = await browser.post(f"/ui/reviews/{review_id}/claim", data={"csrf": csrf_of(page.text)})
        assert claimed.status_code == 303
        page = await browser.get(f"/ui/reviews/{review_id}")
        assert '<select name="in.decision"' in page.text
        bad = await browser.post(
            f"/ui/reviews/{review_id}/decide", data={"csrf": csrf_of(page.text), "in.decision": "maybe"}
        )
        assert bad.status_code == 422
        done = await browser.post(
            f"/ui/reviews/{review_id}/decide", data={"csrf": csrf_of(page.text), "in.decision": "approve"}
        )
        assert done.status_code == 303
        await gw.settle()
        item = (await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)).json()
        assert (item["state"], item["decided_by"], item["run_status"]) == ("RESUMED", "bea", "COMPLETE")


async def test_replaying_a_delivery_writes_exactly_one_audit_row(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        review_id = await open_review(gw)
        await claim(gw.client, review_id)
        await gw.client.post(
            f"/v1/reviews/{review_id}/decision", json={"input": {"decision": "deny"}}, headers=OPERATOR
        )
        await gw.settle()
        delivery = (await gw.client.get("/v1/deliveries", headers=OPERATOR)).json()["items"][0]
        assert delivery["state"] == "DELIVERED"
        await add_operator(gw, "root", "admin")
        root = await api_key(gw, "root", "deliveries:replay")
        assert (await gw.client.post(f"/v1/deliveries/{delivery['id']}/retry", headers=root)).status_code == 202
        rows = sqlite3.connect(tmp_path / "gateway.db").execute(
            "SELECT actor, object FROM audit_log WHERE action = 'delivery_replayed'"
        )
        assert rows.fetchall() == [("root", f"delivery:{delivery['id']}")]
