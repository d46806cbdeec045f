"""The desk's pages in-process: readable data, subjects and their sealed search, claim before decide, bulk
actions, flashes, confirmations, error pages, views audited once per login, the live feed."""

from __future__ import annotations

import html
import re
import sqlite3
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from gateway.web import live
from tests.desk.support import CE, EVENT, add_operator, browser_client, csrf_of, desk_settings, open_review, ui_login
from tests.support import OPERATOR, SOURCE, FrozenClock, Running, claim, running_gateway

SPECIAL = "O'Brien & Søn — José Müller 山田 <b>x</b>"
PAYER = 'PAYER "42" & <i>co</i>'
SUBJECT = "Eligibility for {input.patientId} ({input.payerId})"


async def open_for(gw: Running, patient: str, payer: str = "PAYER-42", event_id: str | None = None) -> str:
    event = {
        **EVENT,
        "id": event_id or f"evt-{abs(hash(patient))}",
        "data": {"patient": {"id": patient}, "coverage": {"payerId": payer}},
    }
    answer = await gw.client.post("/v1/events", json=event, headers={**SOURCE, **CE})
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["runs"][0]["id"]
    await gw.settle()
    [(review_id, _)] = await gw.services.desk.desk.queue.review_ids_for_run(run_id)
    return review_id


async def logged_in(gw: Running, name: str, role: str) -> httpx.AsyncClient:
    client = browser_client(gw)
    await add_operator(gw, name, role)
    assert (await ui_login(client, name)).status_code == 303
    return client


def text_of(page: str) -> str:
    """The page's text as a reader sees it (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


async def test_special_characters_read_as_written_in_subject_gathered_input_and_decision(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        review_id = await open_for(gw, SPECIAL, PAYER)
        bea = await logged_in(gw, "bea", "reviewer")
        queue = (await bea.get("/ui/reviews")).text
        assert f"Eligibility for {SPECIAL} ({PAYER})" in text_of(queue)
        assert "<b>x</b>" not in queue and "&lt;b&gt;x&lt;/b&gt;" in queue  # escaped once, for HTML only
        page = (await bea.get(f"/ui/reviews/{review_id}")).text
        assert "\\u00" not in page and "\\u5c71" not in page
        gathered = re.search(r'<dl class="kv" data-testid="gathered">(.*?)</dl>', page, re.S)
        assert gathered is not None, "a flat object shows as a key/value list"
        assert f"patientId {SPECIAL}" in " ".join(text_of(gathered.group(1)).split())
        run_id = (await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)).json()["run_id"]
        run_page = text_of((await bea.get(f"/ui/runs/{run_id}")).text)
        assert SPECIAL in run_page and PAYER in run_page

        await bea.post(f"/ui/reviews/{review_id}/claim", data={"csrf": csrf_of(page)})
        await bea.post(f"/ui/reviews/{review_id}/decide", data={"csrf": csrf_of(page), "in.decision": "approve"})
        await gw.settle()
        run_page = (await bea.get(f"/ui/runs/{run_id}")).text
        assert "\\u00" not in run_page
        output = re.search(r'data-testid="run-output">(.*?)</(dl|pre)>', run_page, re.S)
        assert output is not None and SPECIAL in text_of(output.group(1))


async def test_the_error_of_a_failed_run_is_shown_to_payload_roles_only(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        event = {**EVENT, "id": "no-patient", "data": {"coverage": {}}}
        run_id = (await gw.client.post("/v1/events", json=event, headers={**SOURCE, **CE})).json()["runs"][0]["id"]
        await gw.settle()
        bea = await logged_in(gw, "bea", "reviewer")
        vic = await logged_in(gw, "vic", "viewer")
        shown = text_of((await bea.get(f"/ui/runs/{run_id}")).text)
        assert "invalid_request_error" in shown and "patientId" in shown
        hidden = text_of((await vic.get(f"/ui/runs/{run_id}")).text)
        assert "invalid_request_error" not in hidden and "hidden" in hidden


async def test_search_finds_subject_words_and_ids_and_keeps_the_text_out_of_urls_and_the_database(
    tmp_path: Path,
) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        muller = await open_for(gw, "José Müller", event_id="src-evt-7")
        other = await open_for(gw, "Ann Smith")
        bea = await logged_in(gw, "bea", "reviewer")

        async def search(client: httpx.AsyncClient, text: str, **filters: str) -> tuple[str, list[str]]:
            csrf = csrf_of((await client.get("/ui/reviews")).text)
            posted = await client.post("/ui/reviews/search", data={"csrf": csrf, "q": text, **filters})
            assert posted.status_code == 303
            url = posted.headers["location"]
            page = (await client.get(url)).text
            return url, re.findall(r'<tr data-review="([^"]+)"', page)

        url, found = await search(bea, "müll")
        assert found == [muller]
        assert set(parse_qs(urlsplit(url).query)) == {"s"} and "ll" not in url.lower() and "%C3%BC" not in url
        _, found = await search(bea, "MÜLLER payer-42")
        assert found == [muller]
        _, found = await search(bea, "smith müller")
        assert found == []
        run_id = (await gw.client.get(f"/v1/reviews/{other}", headers=OPERATOR)).json()["run_id"]
        assert (await search(bea, run_id))[1] == [other]
        assert (await search(bea, other))[1] == [other]
        assert (await search(bea, "src-evt-7"))[1] == [muller]  # the source system's own event id
        url, found = await search(bea, "müller", flow="eligibility", assignee="none")
        assert found == [muller] and parse_qs(urlsplit(url).query)["flow"] == ["eligibility"]

        vic = await logged_in(gw, "vic", "viewer")
        assert (await search(vic, "müller"))[1] == []  # a viewer sees no subjects, so cannot search them
        assert (await search(vic, other))[1] == [other]

        forged = await bea.get("/ui/reviews?s=bm90LXNlYWxlZA")
        assert forged.status_code == 400 and "not from this gateway" in forged.text
    database = b"".join(path.read_bytes() for path in tmp_path.glob("gateway.db*"))
    assert "Müller".encode() not in database and b"Smith" not in database  # sealed subject, digests only


async def test_a_decision_needs_the_deciders_claim_and_a_refusal_keeps_what_was_chosen(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        review_id = await open_review(gw)
        bea = await logged_in(gw, "bea", "reviewer")
        page = (await bea.get(f"/ui/reviews/{review_id}")).text
        assert 'data-testid="decide-form"' not in page and 'data-testid="claim-first"' in page
        refused = await bea.post(f"/ui/reviews/{review_id}/decide", data={"csrf": csrf_of(page), "in.decision": "deny"})
        assert refused.status_code == 409
        assert "before deciding it" in refused.text
        assert 'data-testid="operator">bea<' in refused.text  # the page, with its navigation
        api = await gw.client.post(
            f"/v1/reviews/{review_id}/decision", json={"input": {"decision": "deny"}}, headers=OPERATOR
        )
        assert (api.status_code, api.json()["error"]["code"]) == (409, "claim_required")

        await bea.post(f"/ui/reviews/{review_id}/claim", data={"csrf": csrf_of(page)})
        bad = await bea.post(f"/ui/reviews/{review_id}/decide", data={"csrf": csrf_of(page), "in.decision": "maybe"})
        assert bad.status_code == 422 and 'data-testid="error"' in bad.text
        assert 'data-testid="decide-form"' in bad.text
        typed = await bea.post(
            f"/ui/reviews/{review_id}/reassign",
            data={"csrf": csrf_of(page), "to": "nobody-here", "reason": "payer expert"},
        )
        assert typed.status_code == 422
        assert 'value="nobody-here"' in typed.text and 'value="payer expert"' in typed.text


async def test_without_claim_to_decide_an_unclaimed_item_can_be_decided(tmp_path: Path) -> None:
    review = {"claim_to_decide": False, "subject": SUBJECT}
    async with running_gateway(desk_settings(tmp_path, review=review)) as gw:
        review_id = await open_review(gw)
        answer = await gw.client.post(
            f"/v1/reviews/{review_id}/decision", json={"input": {"decision": "deny"}}, headers=OPERATOR
        )
        assert answer.status_code == 202


async def test_actions_flash_once_and_the_sla_line_shows_how_the_item_ended(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        review_id = await open_review(gw)
        bea = await logged_in(gw, "bea", "reviewer")
        csrf = csrf_of((await bea.get("/ui/reviews")).text)
        claimed = await bea.post(f"/ui/reviews/{review_id}/claim", data={"csrf": csrf}, follow_redirects=True)
        assert 'data-testid="flash">Claimed' in claimed.text
        assert 'data-testid="flash"' not in (await bea.get(f"/ui/reviews/{review_id}")).text  # shown once
        decided = await bea.post(
            f"/ui/reviews/{review_id}/decide", data={"csrf": csrf, "in.decision": "approve"}, follow_redirects=True
        )
        assert "Decision recorded" in decided.text
        await gw.settle()
        sla = re.search(r'data-testid="sla">(.*?)</dd>', (await bea.get(f"/ui/reviews/{review_id}")).text, re.S)
        assert sla is not None
        line = " ".join(text_of(sla.group(1)).split())
        assert line.startswith("met · decided") and "claim in" not in line


async def test_four_eyes_names_the_proposer_and_the_approver(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path, review={"approvals": 1, "subject": SUBJECT})) as gw:
        review_id = await open_review(gw)
        amy = await logged_in(gw, "amy", "reviewer")
        val = await logged_in(gw, "val", "approver")
        csrf = csrf_of((await amy.get("/ui/reviews")).text)
        await amy.post(f"/ui/reviews/{review_id}/claim", data={"csrf": csrf})
        proposed = await amy.post(
            f"/ui/reviews/{review_id}/decide", data={"csrf": csrf, "in.decision": "approve"}, follow_redirects=True
        )
        assert "Proposal recorded" in proposed.text
        page = (await val.get(f"/ui/reviews/{review_id}")).text
        approved = await val.post(
            f"/ui/reviews/{review_id}/approve",
            data={
                "csrf": csrf_of(page),
                "proposal_digest": re.search(r'name="proposal_digest" value="([^"]+)"', page).group(1),
            },  # type: ignore[union-attr]
            follow_redirects=True,
        )
        decided_by = re.search(r'data-testid="decided-by">(.*?)</dd>', approved.text, re.S)
        assert decided_by is not None
        assert " ".join(text_of(decided_by.group(1)).split()).startswith("proposed by amy, approved by val at")


async def test_a_viewer_sees_no_button_it_cannot_use(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        review_id = await open_review(gw)
        vic = await logged_in(gw, "vic", "viewer")
        queue = (await vic.get("/ui/reviews")).text
        assert 'data-testid="bulk-claim"' not in queue and 'name="ids"' not in queue
        page = (await vic.get(f"/ui/reviews/{review_id}")).text
        for control in ('data-testid="claim"', "Reassign", 'data-testid="decide"', "/release"):
            assert control not in page, control


async def test_bulk_claim_release_and_reassign_say_what_was_done(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        first, second, third = [await open_review(gw, patient=f"p-{n}") for n in range(3)]
        bea = await logged_in(gw, "bea", "reviewer")
        await add_operator(gw, "cat", "reviewer")
        await claim(gw.client, third)  # held by demo-operator
        csrf = csrf_of((await bea.get("/ui/reviews")).text)
        done = await bea.post(
            "/ui/reviews/bulk?assignee=me",
            data={"csrf": csrf, "action": "claim", "ids": [first, second, third]},
        )
        assert done.status_code == 303 and done.headers["location"] == "/ui/reviews?assignee=me"
        page = (await bea.get(done.headers["location"])).text
        assert "Claimed 2 of 3 item(s)." in page and f"{third}: review {third} is claimed by demo-operator" in page
        assert sorted(re.findall(r'<tr data-review="([^"]+)"', page)) == sorted([first, second])

        asked = await bea.post(
            "/ui/reviews/bulk",
            data={"csrf": csrf, "action": "reassign", "ids": [first], "to": "cat", "reason": "payer expert"},
        )
        assert asked.status_code == 200 and 'data-testid="question"' in asked.text  # asks first
        assert f'name="ids" value="{first}"' in asked.text
        no_reason = await bea.post(
            "/ui/reviews/bulk",
            data={"csrf": csrf, "action": "reassign", "ids": [first], "to": "cat", "confirmed": "yes"},
        )
        assert no_reason.status_code == 422 and "reason" in no_reason.text
        moved = await bea.post(
            "/ui/reviews/bulk",
            data={
                "csrf": csrf,
                "action": "reassign",
                "ids": [first],
                "to": "cat",
                "reason": "payer expert",
                "confirmed": "yes",
            },
            follow_redirects=True,
        )
        assert "Reassigned 1 of 1 item(s)." in moved.text
        released = await bea.post(
            "/ui/reviews/bulk",
            data={"csrf": csrf, "action": "release", "ids": [second], "confirmed": "yes"},
            follow_redirects=True,
        )
        assert "Released 1 of 1 item(s)." in released.text
        trail = (await gw.client.get(f"/v1/reviews/{first}/audit", headers=OPERATOR)).json()["items"]
        assert [r["details"].get("reason") for r in trail if r["action"] == "reassigned"] == ["payer expert"]


async def test_send_again_asks_first_and_then_says_it_is_queued(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        review_id = await open_review(gw)
        await claim(gw.client, review_id)
        await gw.client.post(
            f"/v1/reviews/{review_id}/decision", json={"input": {"decision": "deny"}}, headers=OPERATOR
        )
        await gw.settle()
        delivery = (await gw.client.get("/v1/deliveries", headers=OPERATOR)).json()["items"][0]
        adam = await logged_in(gw, "adam", "admin")
        page = (await adam.get(f"/ui/deliveries/{delivery['id']}")).text
        assert f'href="/ui/runs/{delivery["run_id"]}"' in page and "Send again" in page
        url = f"/ui/deliveries/{delivery['id']}/retry"
        asked = await adam.post(url, data={"csrf": csrf_of(page), "back": "delivery"})
        assert asked.status_code == 200 and "once more" in asked.text
        assert (await gw.client.get(f"/v1/deliveries/{delivery['id']}", headers=OPERATOR)).json()[
            "state"
        ] == "DELIVERED"
        sent = await adam.post(
            url, data={"csrf": csrf_of(page), "back": "delivery", "confirmed": "yes"}, follow_redirects=True
        )
        assert "queued to be sent again" in sent.text
        assert (await gw.client.get(f"/v1/deliveries/{delivery['id']}", headers=OPERATOR)).json()["state"] == "PENDING"


async def test_payload_views_are_audited_once_per_login_and_item_not_per_load(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        review_id = await open_review(gw)
        run_id = (await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)).json()["run_id"]
        bea = await logged_in(gw, "bea", "reviewer")
        for _ in range(3):
            assert (await bea.get(f"/ui/reviews/{review_id}")).status_code == 200
            assert (await bea.get(f"/ui/runs/{run_id}")).status_code == 200
        await ui_login(bea, "bea")  # a second login of the same operator
        await bea.get(f"/ui/reviews/{review_id}")
        rows = sqlite3.connect(tmp_path / "gateway.db").execute(
            "SELECT object FROM audit_log WHERE action = 'viewed_payload' AND actor = 'bea' ORDER BY seq"
        )
        assert [r[0] for r in rows] == [f"review:{review_id}", f"run:{run_id}", f"review:{review_id}"]


async def test_a_page_refreshing_itself_keeps_neither_the_login_nor_the_claim_alive(tmp_path: Path) -> None:
    clock = FrozenClock()
    async with running_gateway(
        desk_settings(tmp_path, ui={"session_idle": 600, "claim_lease": 300}), clock=clock
    ) as gw:
        review_id = await open_review(gw)
        bea = await logged_in(gw, "bea", "reviewer")
        csrf = csrf_of((await bea.get("/ui/reviews")).text)
        await bea.post(f"/ui/reviews/{review_id}/claim", data={"csrf": csrf})
        refresh = {"X-Desk-Refresh": "1"}
        clock.advance(200)
        assert (await bea.get(f"/ui/reviews/{review_id}", headers=refresh)).status_code == 200
        clock.advance(200)
        assert (await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)).json()["claimed_by"] is None
        clock.advance(250)
        gone = await bea.get("/ui/reviews", headers=refresh)
        assert gone.status_code == 303 and gone.headers["location"] == "/ui/login"


async def test_the_desk_is_the_home_page_and_missing_items_keep_the_navigation(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        for path in ("/", "/ui", "/ui/"):
            answer = await gw.client.get(path)
            assert (answer.status_code, answer.headers["location"]) == (303, "/ui/reviews"), path
        bea = await logged_in(gw, "bea", "reviewer")
        missing = await bea.get("/ui/reviews/rev_nope")
        assert missing.status_code == 404
        assert 'aria-label="Sections"' in missing.text and "no review rev_nope" in missing.text


async def test_the_live_feed_announces_changed_items_and_runs_but_not_views(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        review_id = await open_review(gw)
        run_id = (await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)).json()["run_id"]
        feed = live.ChangeFeed(gw.services.store.db)
        seq, step = await feed.ends()
        await gw.client.get(f"/v1/reviews/{review_id}", headers=OPERATOR)  # a view: audited, but not a change
        assert (await feed.since(seq, step))[2] == live.Change()
        await claim(gw.client, review_id)
        seq, step, change = await feed.since(seq, step)
        assert change == live.Change(reviews=(review_id,))
        await gw.client.post(
            f"/v1/reviews/{review_id}/decision", json={"input": {"decision": "deny"}}, headers=OPERATOR
        )
        await gw.settle()
        _, _, change = await feed.since(seq, step)
        assert change.reviews == (review_id,) and change.runs == (run_id,)
        assert 'data: {"reviews": ["' + review_id in change.message()


async def test_closing_the_feed_ends_every_stream(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        feed = live.ChangeFeed(gw.services.store.db)
        async with feed.listen() as first, feed.listen() as second:
            feed.close()
            assert await first.get() is None and await second.get() is None
        async with feed.listen() as late:
            assert await late.get() is None


async def test_a_page_stream_first_reports_what_changed_since_the_page_was_read(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw:
        review_id = await open_review(gw)
        bea = await logged_in(gw, "bea", "reviewer")
        page = (await bea.get("/ui/reviews")).text
        found = re.search(r'data-live-from="([0-9]+\.[0-9]+)"', page)
        assert found is not None
        await claim(gw.client, review_id)  # after the page was read, before its stream starts
        first = await first_events(gw, bea, f"/ui/live?from={found.group(1)}")
        assert first.startswith("retry: 3000\nevent: hello\n")
        assert f'event: change\ndata: {{"reviews": ["{review_id}"], "runs": []}}' in first


async def first_events(gw: Running, client: httpx.AsyncClient, path: str) -> str:
    """What an SSE stream sends up to its first change: the app is called directly (ASGITransport would wait for
    the end of a stream that does not end)."""
    import asyncio

    chunks: list[bytes] = []
    arrived = asyncio.Event()
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"gateway.test"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 1),
        "server": ("gateway.test", 80),
    }

    async def receive() -> dict[str, object]:
        await asyncio.Event().wait()  # the client never sends anything or leaves
        raise AssertionError

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            chunks.append(message["body"])  # type: ignore[arg-type]
            if b"event: change" in b"".join(chunks):
                arrived.set()

    task = asyncio.create_task(gw.app(scope, receive, send))
    try:
        await asyncio.wait_for(arrived.wait(), timeout=30)
    finally:
        task.cancel()
    return b"".join(chunks).decode()
