"""The UI's delivery page lists every attempt of a delivery (time, duration, status, size, error; never a body)."""

from __future__ import annotations

from pathlib import Path

from tests.desk.support import add_operator, browser_client, desk_settings, ui_login
from tests.support import OPERATOR, SOURCE, claim, running_gateway
from tests.web.test_metrics import CE, EXAMPLE_EVENT


async def test_the_delivery_page_shows_the_attempts(tmp_path: Path) -> None:
    async with running_gateway(desk_settings(tmp_path)) as gw, browser_client(gw) as viewer:
        await gw.client.post("/v1/events", content=EXAMPLE_EVENT.read_bytes(), headers={**SOURCE, **CE})
        await gw.settle()
        (review,) = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"]
        decision = {"input": {"decision": "approve"}}
        await claim(gw.client, review["id"])
        await gw.client.post(f"/v1/reviews/{review['id']}/decision", json=decision, headers=OPERATOR)
        await gw.settle()
        (delivery,) = (await gw.client.get("/v1/deliveries", headers=OPERATOR)).json()["items"]
        await add_operator(gw, "vic", "viewer")
        await ui_login(viewer, "vic")
        listing = await viewer.get("/ui/deliveries")
        assert f'href="/ui/deliveries/{delivery["id"]}"' in listing.text
        page = await viewer.get(f"/ui/deliveries/{delivery['id']}")
        assert page.status_code == 200
        table = page.text.split('data-testid="attempts"', 1)[1].split("</table>", 1)[0]
        assert table.count("<tr>") == 2  # the header and one attempt
        assert " ms</td>" in table and "PHI" not in table
        assert (await viewer.get("/ui/deliveries/dlv_nope")).status_code == 404
