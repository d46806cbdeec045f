"""The operator desk in headless Chromium against the real server process.

Covered: working an item end to end while a colleague sees the claim; non-ASCII and HTML-special data shown as
written; search; a bulk claim; a keyboard-only claim and decision; a live update arriving without a reload;
the refusal of a decision without a claim; every page at 390 px without horizontal scrolling; axe-core with no
serious or critical violation on every page at 390 and 1400 px.

Chromium is Debian's package (``make browsers``); Playwright drives it through ``executable_path`` and never
downloads a browser. axe-core comes from PyPI (axe-playwright-python, the test extra) and is injected by the
test, never served by the gateway. One server serves the module: each test makes its own items (distinct
patients) and finds them by their subject, never by their position in a list (items opened in the same
moment have no order a test may rely on). Set GATEWAY_SCREENSHOT_DIR to keep the screenshots
(``make screenshots``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support import EXAMPLE_CONFIG, OPERATOR_TOKEN, SOURCE_TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
expect.set_options(timeout=60_000)  # generous, for a loaded two-core machine

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "a password for the browser test"
EVENT = json.loads((EXAMPLE_CONFIG.parent / "examples" / "event.json").read_text())
GATEWAY = [sys.executable, "-m", "gateway"]
OPERATORS = (("alice", "reviewer"), ("bob", "approver"), ("vera", "viewer"), ("adam", "admin"))
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
WIDE, PHONE = 1400, 390
WAIT = 60.0  # seconds: generous, for a loaded two-core machine
SPECIAL = "O'Brien & Søn — José Müller 山田 <b>x</b>"
SPECIAL_PAYER = 'PAYER "42" & <i>co</i>'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``gateway serve`` on a free port with the example config, its store and output in a temp dir."""
    tmp_path = tmp_path_factory.mktemp("desk")
    port = free_port()
    text = EXAMPLE_CONFIG.read_text()
    text = text.replace("sqlite:///var/gateway.db", f"sqlite:///{tmp_path / 'gateway.db'}")
    text = text.replace('path = "var/out/results.jsonl"', f'path = "{tmp_path / "results.jsonl"}"')
    text = text.replace("duplicate_rate = 0.2", "duplicate_rate = 0").replace("step_delay = 0.2", "step_delay = 0.05")
    config = tmp_path / "gateway.toml"
    config.write_text(text)
    for name, role in OPERATORS:
        subprocess.run(
            [*GATEWAY, "operators", "add", name, "--role", role, "--password-stdin", "--config", str(config)],
            input=PASSWORD + "\n",
            text=True,
            check=True,
            capture_output=True,
        )
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [*GATEWAY, "serve", "--config", str(config), "--port", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        eventually("the server answers /readyz", lambda: _ready(base, process))
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _ready(base: str, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, "the server exited"
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def eventually(what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def login(browser: Browser, base: str, name: str, width: int = WIDE) -> Page:
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.set_default_timeout(WAIT * 1000)
    page.goto(f"{base}/ui/")
    expect(page).to_have_url(f"{base}/ui/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/ui/reviews")
    expect(page.get_by_test_id("operator")).to_have_text(name)
    return page


def post_event(base: str, event_id: str, patient: str, payer: str = "PAYER-42") -> str:
    """Post one event; returns its run id once the run waits for a decision (its review is open)."""
    event = {**EVENT, "id": event_id, "data": {"patient": {"id": patient}, "coverage": {"payerId": payer}}}
    answer = httpx.post(
        f"{base}/v1/events",
        json=event,
        headers={"Authorization": f"Bearer {SOURCE_TOKEN}", "Content-Type": "application/cloudevents+json"},
    )
    assert answer.status_code == 202, answer.text
    run_id: str = answer.json()["runs"][0]["id"]
    eventually(f"an open review for {patient}", lambda: review_of(base, run_id))
    return run_id


def review_of(base: str, run_id: str) -> str | None:
    items = httpx.get(f"{base}/v1/reviews?limit=500", headers=OPERATOR).json()["items"]
    found = [item["id"] for item in items if item["run_id"] == run_id and item["state"] == "OPEN"]
    return found[0] if found else None


def subject(patient: str, payer: str = "PAYER-42") -> str:
    return f"Eligibility for {patient} ({payer})"


def row(page: Page, patient: str, payer: str = "PAYER-42") -> Any:
    return page.locator("tr[data-review]", has=page.get_by_text(subject(patient, payer), exact=True))


def search(page: Page, text: str) -> None:
    page.get_by_test_id("search").fill(text)
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("search-note")).to_contain_text(text)


def scripted(page: Page) -> None:
    """Wait until the page's script has set up its shortcuts (it runs after the page is shown)."""
    expect(page.locator("body")).to_have_attribute("data-script", "ready")


def screenshot(page: Page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("GATEWAY_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)


def test_an_operator_works_an_item_end_to_end_and_a_colleague_sees_the_claim(
    server: str, browser: Browser, tmp_path: Path
) -> None:
    alice = login(browser, server, "alice")
    runs = {n: post_event(server, f"e2e-{n}", f"P-100{n}") for n in range(1, 4)}
    alice.reload()
    for n in runs:
        expect(row(alice, f"P-100{n}")).to_have_count(1)
    screenshot(alice, "ui-queue.png", tmp_path)
    target = row(alice, "P-1001")
    review_id = target.get_attribute("data-review")
    target.get_by_test_id("subject").click()

    expect(alice.get_by_test_id("review-state")).to_have_text("OPEN")
    expect(alice.get_by_test_id("item-subject")).to_have_text(subject("P-1001"))
    expect(alice.get_by_test_id("gathered")).to_contain_text("P-1001")
    alice.get_by_test_id("claim").click()
    expect(alice.get_by_test_id("flash")).to_contain_text("Claimed")
    expect(alice.get_by_test_id("holder")).to_contain_text("alice")
    item_url = alice.url

    bob = login(browser, server, "bob")
    bob.goto(item_url)
    expect(bob.get_by_test_id("holder")).to_contain_text("alice")
    expect(bob.get_by_test_id("decide-form")).to_have_count(0)
    bob.goto(f"{server}/ui/reviews")
    expect(bob.locator(f"tr[data-review='{review_id}'] [data-testid=claimed-by]")).to_have_text("alice")

    alice.select_option("select[name='in.decision']", "approve")
    screenshot(alice, "ui-item.png", tmp_path)
    alice.get_by_test_id("decide").click()
    expect(alice.get_by_test_id("flash")).to_contain_text("Decision recorded")
    expect(alice.get_by_test_id("decided-by")).to_contain_text("alice")
    expect(alice.get_by_test_id("run-status")).to_have_text("COMPLETE")  # arrives live, no reload needed
    expect(alice.get_by_test_id("review-state")).to_have_text("RESUMED")
    expect(alice.get_by_test_id("sla")).to_contain_text("met")


def test_non_ascii_and_html_special_data_read_as_written(server: str, browser: Browser) -> None:
    run_id = post_event(server, "special-1", SPECIAL, SPECIAL_PAYER)
    alice = login(browser, server, "alice")
    search(alice, "o'brien")
    line = subject(SPECIAL, SPECIAL_PAYER)
    expect(alice.get_by_test_id("queue").get_by_test_id("subject")).to_have_text([line])
    alice.get_by_test_id("subject").click()
    expect(alice.get_by_test_id("item-subject")).to_have_text(line)
    expect(alice.locator("[data-testid=gathered] dd").filter(has_text="Søn")).to_have_text(SPECIAL)
    alice.goto(f"{server}/ui/runs/{run_id}")
    expect(alice.locator("[data-testid=run-input] dd").filter(has_text="PAYER")).to_have_text(SPECIAL_PAYER)
    for text in (alice.content(), alice.inner_text("body")):
        assert "\\u00" not in text and "\\u5c71" not in text


def test_search_then_a_bulk_claim(server: str, browser: Browser) -> None:
    for n, given in enumerate(("Hannah", "Omar"), start=1):
        post_event(server, f"bulk-{n}", f"{given} Lindqvist")
    post_event(server, "bulk-other", "Tomas Okafor")
    alice = login(browser, server, "alice")
    search(alice, "lindqvist")
    assert "lindqvist" not in alice.url.lower()  # the search text never goes in the address
    rows = alice.locator("tr[data-review]")
    expect(rows).to_have_count(2)
    scripted(alice)
    alice.locator("[data-select-all]").check()
    alice.get_by_test_id("bulk-claim").click()
    expect(alice.get_by_test_id("flash")).to_have_text("Claimed 2 of 2 item(s).")
    expect(alice.get_by_test_id("claimed-by")).to_have_text(["alice", "alice"])
    search(alice, "okafor")
    expect(alice.get_by_test_id("claimed-by")).to_have_text(["—"])


def test_keyboard_only_claim_and_decide(server: str, browser: Browser) -> None:
    post_event(server, "keys-1", "Ingrid Halvorsen")
    alice = login(browser, server, "alice")
    scripted(alice)
    alice.keyboard.press("/")
    alice.keyboard.type("halvorsen")
    alice.keyboard.press("Enter")
    expect(alice.locator("tr[data-review]")).to_have_count(1)
    scripted(alice)
    alice.keyboard.press("j")
    expect(alice.locator("tr[data-review] a").first).to_be_focused()
    alice.keyboard.press("c")
    expect(alice.get_by_test_id("flash")).to_contain_text("Claimed")
    expect(alice.get_by_test_id("holder")).to_contain_text("alice")
    scripted(alice)
    alice.keyboard.press("a")
    expect(alice.locator("select[name='in.decision']")).to_have_value("approve")
    expect(alice.get_by_test_id("decide")).to_be_focused()
    alice.keyboard.press("Enter")
    expect(alice.get_by_test_id("flash")).to_contain_text("Decision recorded")
    expect(alice.get_by_test_id("decided-by")).to_contain_text("alice")
    scripted(alice)
    alice.keyboard.press("?")
    expect(alice.locator("#help")).to_be_visible()
    alice.keyboard.press("Escape")
    expect(alice.locator("#help")).to_be_hidden()


def test_a_new_item_arrives_live_without_a_reload(server: str, browser: Browser) -> None:
    alice = login(browser, server, "alice")
    expect(alice.locator("body")).to_have_attribute("data-live-connected", "yes")
    alice.evaluate("window.notReloaded = true")
    post_event(server, "live-1", "Mateo Rossi")
    expect(row(alice, "Mateo Rossi")).to_have_count(1)
    assert alice.evaluate("window.notReloaded === true")


def test_a_decision_without_a_claim_is_refused_and_keeps_the_choice(server: str, browser: Browser) -> None:
    post_event(server, "claim-first-1", "Priya Raman")
    alice = login(browser, server, "alice")
    search(alice, "raman")
    alice.get_by_test_id("subject").click()
    expect(alice.get_by_test_id("claim-first")).to_be_visible()  # no form to fill before claiming
    alice.get_by_test_id("claim").click()
    expect(alice.get_by_test_id("decide-form")).to_be_visible()
    alice.select_option("select[name='in.decision']", "deny")
    other_tab = alice.context.new_page()  # the same operator lets go of the item in another tab
    other_tab.goto(alice.url)
    other_tab.get_by_test_id("release").click()
    expect(other_tab.get_by_test_id("flash")).to_contain_text("Released")
    alice.get_by_test_id("decide").click()
    expect(alice.get_by_test_id("error")).to_contain_text("claim review")
    expect(alice.get_by_test_id("error")).to_contain_text("before deciding it")
    expect(alice.get_by_test_id("operator")).to_have_text("alice")  # the navigation stays
    expect(alice.get_by_test_id("review-state")).to_have_text("OPEN")


def test_every_page_fits_a_phone_and_has_no_serious_accessibility_violation(
    server: str, browser: Browser, tmp_path: Path
) -> None:
    run_id = post_event(server, "pages-1", "Grace Adebayo")
    review_id = review_of(server, run_id)
    errored = httpx.post(
        f"{server}/v1/events",
        json={**EVENT, "id": "pages-error", "data": {"coverage": {}}},
        headers={"Authorization": f"Bearer {SOURCE_TOKEN}", "Content-Type": "application/cloudevents+json"},
    ).json()["runs"][0]["id"]
    delivery = eventually("a delivery", lambda: deliveries(server))
    pages = {
        "queue": "/ui/reviews",
        "item": f"/ui/reviews/{review_id}",
        "runs": "/ui/runs",
        "run": f"/ui/runs/{errored}",
        "deliveries": "/ui/deliveries",
        "delivery": f"/ui/deliveries/{delivery}",
    }
    axe = Axe()
    for width in (PHONE, WIDE):
        anonymous = browser.new_context(viewport={"width": width, "height": 900}).new_page()
        anonymous.goto(f"{server}/ui/login")
        check(anonymous, axe, "login", width)
        adam = login(browser, server, "adam", width)
        for name, path in pages.items():
            adam.goto(f"{server}{path}")
            check(adam, axe, name, width)
            if name in ("queue", "item", "run") and (width == PHONE or name == "run"):
                screenshot(adam, f"ui-{name}{'-phone' if width == PHONE else ''}.png", tmp_path)

    asked: list[str] = []
    adam.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    adam.goto(f"{server}/ui/deliveries/{delivery}")
    scripted(adam)
    adam.get_by_role("button", name=re.compile("Send again|Retry")).click()
    expect(adam.get_by_test_id("flash")).to_contain_text("queued to be sent again")
    assert len(asked) == 1 and "once more" in asked[0]  # a repeating action asks first


def deliveries(base: str) -> str | None:
    items = httpx.get(f"{base}/v1/deliveries", headers=OPERATOR).json()["items"]
    return items[0]["id"] if items else None


def check(page: Page, axe: Axe, name: str, width: int) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name} at {width} px scrolls sideways by {overflow} px"
    violations = [
        (v["id"], v["impact"], [node["target"] for node in v["nodes"]][:3])
        for v in axe.run(page).response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert violations == [], f"{name} at {width} px: {violations}"
