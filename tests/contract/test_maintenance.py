"""Key rotation and payload retention against a real SQLite store."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from gateway.domain.desk import QueueFilter
from gateway.store.maintenance import purge_payloads, reseal
from gateway.store.queue_sql import QueueStore
from gateway.store.sealing import AesGcmSealer, generate_data_key, parse_data_key
from tests.support import OPERATOR, SOURCE, Running, claim, example_settings, running_gateway

EVENT = json.loads((Path(__file__).resolve().parents[2] / "examples" / "event.json").read_text())
CE = {"Content-Type": "application/cloudevents+json"}


async def complete_one_run(gw: Running) -> str:
    answer = await gw.client.post("/v1/events", json=EVENT, headers={**SOURCE, **CE})
    run_id: str = answer.json()["runs"][0]["id"]
    await gw.settle()
    review = (await gw.client.get("/v1/reviews", headers=OPERATOR)).json()["items"][0]
    await claim(gw.client, review["id"])
    await gw.client.post(f"/v1/reviews/{review['id']}/decision", json={"input": {"decision": "deny"}}, headers=OPERATOR)
    await gw.settle()
    return run_id


async def test_rotate_data_reseals_everything_under_the_new_key(tmp_path: Path) -> None:
    settings = example_settings(tmp_path)
    async with running_gateway(settings) as gw:
        run_id = await complete_one_run(gw)
        old = settings.encryption.current
        assert old is not None
        new = parse_data_key(generate_data_key("next"))
        rotated = AesGcmSealer(new, {old.id: old})
        changed = await reseal(gw.services.store, rotated)
        assert changed >= 4  # event body, run input and output, review gathered and decision
        assert await reseal(gw.services.store, rotated) == 0
        gw.services.store.payloads.sealer = AesGcmSealer(new)  # the old key is gone now
        run = await gw.services.store.get_run(run_id)
        assert run is not None and run.output is not None and run.output["decision"] == "deny"
        queue = QueueStore(gw.services.store)  # built after the rotation: knows the new key only
        [found] = await queue.list_items(
            QueueFilter(state=None, search="p-1001", search_subject=True), gw.services.clock.now()
        )
        assert found.subject == "Eligibility for P-1001 (PAYER-42)"


async def test_purge_drops_the_subject_and_its_search_terms(tmp_path: Path) -> None:
    async with running_gateway(example_settings(tmp_path)) as gw:
        run_id = await complete_one_run(gw)
        store = gw.services.store
        run = await store.get_run(run_id)
        assert run is not None and run.finished_at is not None
        await purge_payloads(store, run.finished_at + timedelta(seconds=1))
        queue = QueueStore(store)
        assert (
            await queue.list_items(
                QueueFilter(state=None, search="p-1001", search_subject=True), gw.services.clock.now()
            )
            == []
        )
        [item] = await queue.list_items(QueueFilter(state=None), gw.services.clock.now())
        assert item.subject is None


async def test_purge_drops_payloads_after_retention_and_keeps_metadata(tmp_path: Path) -> None:
    async with running_gateway(example_settings(tmp_path)) as gw:
        run_id = await complete_one_run(gw)
        store = gw.services.store
        run = await store.get_run(run_id)
        assert run is not None and run.finished_at is not None
        assert await purge_payloads(store, run.finished_at) == {"runs": 0, "events": 0, "reviews": 0}
        purged = await purge_payloads(store, run.finished_at + timedelta(seconds=1))
        assert purged == {"runs": 1, "events": 1, "reviews": 1}
        kept = await store.get_run(run_id)
        assert kept is not None and kept.status.value == "COMPLETE"
        assert kept.input is None and kept.output is None
        assert await store.timeline(run_id)
        assert await store.event_body(kept.event_id) is None
