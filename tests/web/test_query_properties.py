"""Query and path parameters of the operator API: any text gives 200, 400 or 404, never a server error."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import OPERATOR, Running

LISTS = {
    "/v1/runs": ["status", "flow", "route", "provider", "event_id", "before", "limit"],
    "/v1/reviews": ["state", "flow", "before", "limit"],
    "/v1/deliveries": ["state", "run_id", "sink", "before", "limit"],
}
ITEMS = ["/v1/runs/{}", "/v1/reviews/{}", "/v1/deliveries/{}"]
texts = st.text(max_size=30) | st.sampled_from(["²", "٣", "0", "501", "1" * 30, "OPEN", "COMPLETE", ""])
checked = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@checked
@given(path=st.sampled_from(sorted(LISTS)), data=st.data())
async def test_list_parameters(gw: Running, path: str, data: st.DataObject) -> None:
    params = data.draw(st.dictionaries(st.sampled_from(LISTS[path]), texts, max_size=4))
    answer = await gw.client.get(path, params=params, headers=OPERATOR)
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        assert answer.json()["error"]["code"] == "bad_request"


@checked
# "." and ".." are dot segments: the client resolves them (RFC 3986) before sending, so they name no item
@given(template=st.sampled_from(ITEMS), ident=st.text(min_size=1, max_size=40).filter(lambda s: s not in (".", "..")))
async def test_item_ids(gw: Running, template: str, ident: str) -> None:
    answer = await gw.client.get(template.format(quote(ident, safe="")), headers=OPERATOR)
    assert answer.status_code in (404, 405), answer.text
    assert set(answer.json()) == {"error"}
