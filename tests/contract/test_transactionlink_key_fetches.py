"""TransactionLink key fetches are guarded (issue 11 point 4): a webhook's kid is unauthenticated input.

At most one fetch per interval per provider, unknown kids refused at once while fetches cool down, no lock
held across the network call (a stalled fetch blocks nobody else), and dot-only kids refused as a bad
signature (401) rather than a provider error (502).
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from gateway.domain import errors
from gateway.providers import _tl_keys
from gateway.providers import transactionlink as tl
from tests.contract.test_transactionlink_provider import KID, PEM, T0, Clock, headers_for, raw, settings

BODY = raw("webhook_completed")
SECOND_KID = "second-key"


class KeyServer:
    """The key endpoint: counts calls per kid; kids in ``stall`` wait until ``release`` is set."""

    def __init__(self, stall: frozenset[str] = frozenset()) -> None:
        self.calls: list[str] = []
        self.stall = stall
        self.release = asyncio.Event()
        self.stalled = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        kid = request.url.path.rsplit("/", 1)[1]
        self.calls.append(kid)
        if kid in self.stall:
            self.stalled.set()
            await self.release.wait()
        return httpx.Response(200, content=PEM) if kid in (KID, SECOND_KID) else httpx.Response(404)


def provider_for(server: KeyServer, clock: Clock) -> tl.TransactionLinkProvider:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return tl.build(settings(), http=http, clock=clock)


async def verify(provider: tl.TransactionLinkProvider, kid: str) -> str:
    note = await provider.parse_notification(BODY, headers_for(BODY, kid=kid), T0)
    return note.provider_run_id


async def test_random_kids_cause_one_fetch_per_interval() -> None:
    server, clock = KeyServer(), Clock()
    provider = provider_for(server, clock)
    for _ in range(30):  # 30 seconds, ten random kids a second
        for _ in range(10):
            with pytest.raises(errors.SignatureError, match="unknown JWS key id") as caught:
                await verify(provider, str(uuid.uuid4()))
            assert not caught.value.malformed  # 401, inside the failed-auth throttle
        clock.advance(1)
    assert len(server.calls) == 30 // _tl_keys.MIN_FETCH_INTERVAL
    assert await verify(provider, KID)  # the real key is fetched once the interval has passed
    assert len(server.calls) == 4
    for _ in range(5):
        assert await verify(provider, KID)  # and then served from the cache
    assert len(server.calls) == 4


async def test_a_stalled_fetch_holds_no_lock() -> None:
    server, clock = KeyServer(stall=frozenset({SECOND_KID})), Clock()
    provider = provider_for(server, clock)
    assert await verify(provider, KID)  # known from now on
    clock.advance(_tl_keys.MIN_FETCH_INTERVAL)
    stalled = asyncio.create_task(verify(provider, SECOND_KID))
    same_kid = asyncio.create_task(verify(provider, SECOND_KID))
    await asyncio.wait_for(server.stalled.wait(), timeout=30)

    assert await asyncio.wait_for(verify(provider, KID), timeout=5)  # a known key: no wait
    with pytest.raises(errors.SignatureError, match="cooling down"):
        await asyncio.wait_for(verify(provider, str(uuid.uuid4())), timeout=5)  # refused at once, no call
    assert not stalled.done() and not same_kid.done()
    server.release.set()
    assert await stalled and await same_kid
    assert server.calls == [KID, SECOND_KID]  # the two waiters shared one fetch


@pytest.mark.parametrize("kid", [".", ".."])
async def test_dot_only_kids_are_a_bad_signature_without_a_fetch(kid: str) -> None:
    server = KeyServer()
    with pytest.raises(errors.SignatureError) as caught:
        await verify(provider_for(server, Clock()), kid)
    assert not caught.value.malformed
    assert server.calls == []
