"""Our signer and verifier against the reference libraries (test-only oracles).

The oracles' ``verify`` reads the real clock, so the messages exchanged with them carry the current time.
They also decode the body as UTF-8 before signing, so bodies here are encoded text.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import standardwebhooks.webhooks as std
import svix.webhooks
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import signing
from gateway.domain.errors import SignatureError

VALID_ID_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != ".")
ids = st.text(alphabet=VALID_ID_CHARS, min_size=1, max_size=256)
secrets = st.binary(min_size=24, max_size=64).map(signing.generate_secret)
bodies = st.text().map(str.encode)
timestamps = st.integers(min_value=0, max_value=9_999_999_999)

interop = settings(max_examples=200, deadline=None)


def current_time() -> tuple[datetime, int]:
    now = datetime.now(UTC)
    return now, int(now.timestamp())


@interop
@given(secret=secrets, msg_id=ids, timestamp=timestamps, body=bodies)
def test_our_entry_equals_standardwebhooks_sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> None:
    theirs = std.Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body.decode())
    assert signing.sign(signing.parse_signing_key(secret), msg_id, timestamp, body) == theirs


@interop
@given(secret=secrets, msg_id=ids, body=bodies)
def test_standardwebhooks_accepts_our_signature(secret: str, msg_id: str, body: bytes) -> None:
    _, ts = current_time()
    hdrs = signing.sign_headers(signing.parse_signing_key(secret), msg_id, ts, body)
    assert std.Webhook(secret).verify(body, hdrs, json_parse=False) is None


@interop
@given(secret=secrets, msg_id=ids, body=bodies, prefix=st.sampled_from(["svix", "webhook"]))
def test_svix_accepts_our_signature(secret: str, msg_id: str, body: bytes, prefix: str) -> None:
    _, ts = current_time()
    hdrs = signing.sign_headers(signing.parse_signing_key(secret), msg_id, ts, body, prefix=prefix)
    svix.webhooks.Webhook(secret).verify(body, hdrs)


@interop
@given(secret=secrets, msg_id=ids, body=bodies)
def test_we_accept_standardwebhooks_signature(secret: str, msg_id: str, body: bytes) -> None:
    now, ts = current_time()
    entry = std.Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), body.decode())
    hdrs = {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": entry}
    std.Webhook(secret).verify(body, hdrs, json_parse=False)
    verified = signing.verify(body, hdrs, [signing.parse_verify_key(secret)], now=now)
    assert verified == signing.VerifiedMessage(id=msg_id, timestamp=ts)


@interop
@given(secret=secrets, msg_id=ids, body=bodies)
def test_we_accept_svix_signature(secret: str, msg_id: str, body: bytes) -> None:
    now, ts = current_time()
    entry = svix.webhooks.Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), body.decode())
    hdrs = {"svix-id": msg_id, "svix-timestamp": str(ts), "svix-signature": entry}
    svix.webhooks.Webhook(secret).verify(body, hdrs)
    assert signing.verify(body, hdrs, [signing.parse_verify_key(secret)], now=now).id == msg_id


@interop
@given(old=secrets, new=secrets, msg_id=ids, body=bodies)
def test_rotation_header_agrees_with_standardwebhooks(old: str, new: str, msg_id: str, body: bytes) -> None:
    now, ts = current_time()
    entries = [signing.sign(signing.parse_signing_key(s), msg_id, ts, body) for s in (old, new)]
    hdrs = {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": " ".join(entries)}
    for secret in (old, new):
        std.Webhook(secret).verify(body, hdrs, json_parse=False)
        assert signing.verify(body, hdrs, [signing.parse_verify_key(secret)], now=now).id == msg_id


@interop
@given(signer=secrets, other=secrets, msg_id=ids, body=bodies)
def test_both_reject_a_different_secret(signer: str, other: str, msg_id: str, body: bytes) -> None:
    now, ts = current_time()
    hdrs = signing.sign_headers(signing.parse_signing_key(signer), msg_id, ts, body)
    if signing.parse_verify_key(signer) == signing.parse_verify_key(other):
        return
    with pytest.raises(std.WebhookVerificationError):
        std.Webhook(other).verify(body, hdrs, json_parse=False)
    with pytest.raises(SignatureError):
        signing.verify(body, hdrs, [signing.parse_verify_key(other)], now=now)
