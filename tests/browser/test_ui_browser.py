"""The operator UI in headless Chromium against the real server process: log in, see a new item, claim it,
fill the form, decide, watch the run complete; a second operator sees the claim.

Chromium is Debian's package (``make browsers``); Playwright drives it through ``executable_path`` and never
downloads a browser. Set GATEWAY_SCREENSHOT_DIR to keep the queue and item screenshots (``make screenshots``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support import EXAMPLE_CONFIG, OPERATOR_TOKEN, SOURCE_TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``gateway serve`` on a free port with the example config, its store and output in tmp_path."""
    port = free_port()
    text = EXAMPLE_CONFIG.read_text()
    text = text.replace("sqlite:///var/gateway.db", f"sqlite:///{tmp_path / 'gateway.db'}")
    text = text.replace('path = "var/out/results.jsonl"', f'path = "{tmp_path / "results.jsonl"}"')
    text = text.replace("duplicate_rate = 0.2", "duplicate_rate = 0").replace("step_delay = 0.2", "step_delay = 0.05")
    config = tmp_path / "gateway.toml"
    config.write_text(text)
    for name, role in (("alice", "reviewer"), ("bob", "approver")):
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
        _wait_ready(base, process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def _wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not become ready")


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def login(browser: Browser, base: str, name: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{base}/ui/")
    expect(page).to_have_url(f"{base}/ui/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/ui/reviews")
    expect(page.get_by_test_id("operator")).to_have_text(name)
    return page


def reload_until(page: Page, check: str, timeout: float = 20.0) -> None:
    """Reload until a locator appears (the UI also refreshes itself, more slowly)."""
    deadline = time.monotonic() + timeout
    while page.locator(check).count() == 0:
        assert time.monotonic() < deadline, f"{check} did not appear"
        time.sleep(0.2)
        page.reload()


def wait_for_pauses(base: str, key: str, count: int, timeout: float = 20.0) -> None:
    """Wait until ``count`` open reviews ask for ``key`` (a run may pass through other pauses on the way)."""
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = httpx.get(f"{base}/v1/reviews", headers=headers).json()["items"]
        asks = [httpx.get(f"{base}/v1/reviews/{i['id']}", headers=headers).json()["asks_for"]["key"] for i in items]
        if asks.count(key) == count and len(asks) == count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{count} open reviews asking for {key} did not appear")


def screenshot(page: Page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("GATEWAY_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)


def test_an_operator_works_an_item_end_to_end_and_a_colleague_sees_the_claim(
    server: str, browser: Browser, tmp_path: Path
) -> None:
    alice = login(browser, server, "alice")
    for n in range(1, 4):
        event = {**EVENT, "id": f"browser-{n}", "data": {**EVENT["data"], "patient": {"id": f"P-100{n}"}}}
        answer = httpx.post(
            f"{server}/v1/events",
            json=event,
            headers={"Authorization": f"Bearer {SOURCE_TOKEN}", "Content-Type": "application/cloudevents+json"},
        )
        assert answer.status_code == 202
    wait_for_pauses(server, "await-decision", 3)

    reload_until(alice, "tr[data-review]")
    rows = alice.locator("tr[data-review]")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("eligibility")
    expect(alice.get_by_test_id("queue")).not_to_contain_text("P-100")  # lists show no payload
    screenshot(alice, "ui-queue.png", tmp_path)
    review_id = rows.last.get_attribute("data-review")
    rows.last.locator("a").click()

    expect(alice.get_by_test_id("review-state")).to_have_text("OPEN")
    expect(alice.get_by_test_id("gathered")).to_contain_text(re.compile(r"P-100[123]"))  # reviews open in any order
    alice.get_by_test_id("claim").click()
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
    expect(alice.get_by_test_id("decided-by")).to_contain_text("alice")
    reload_until(alice, "[data-testid=run-status]:text('COMPLETE')")
    expect(alice.get_by_test_id("review-state")).to_have_text("RESUMED")
    results = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["run"]["status"] for line in results] == ["COMPLETE"]
