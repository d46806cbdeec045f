from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256

from gateway.core import jws
from gateway.domain import errors

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
BODY = b'{"workflowId": "w-1", "status": "COMPLETED", "note": "z\xc3\xb3\xc5\x82w"}'


def test_round_trip_in_every_mode() -> None:
    encoded = jws.parse(jws.sign(KEY, "k1", BODY))
    unencoded = jws.parse(jws.sign(KEY, "k1", BODY, unencoded=True))
    assert encoded.kid == "k1" and not encoded.declares_unencoded and unencoded.declares_unencoded
    for mode in (jws.PayloadMode.ENCODED, jws.PayloadMode.EITHER):
        jws.verify(encoded, KEY.public_key(), BODY, mode)
    for mode in (jws.PayloadMode.UNENCODED, jws.PayloadMode.EITHER):
        jws.verify(unencoded, KEY.public_key(), BODY, mode)


def test_the_signing_input_is_rfc_7515_appendix_f() -> None:
    detached = jws.parse(jws.sign(KEY, "k1", BODY))
    (data,) = jws.signing_inputs(detached, BODY, jws.PayloadMode.ENCODED)
    assert data == f"{detached.header_b64}.{jws.b64url_encode(BODY)}".encode()
    assert detached.payload_b64 == ""


def test_one_changed_byte_fails() -> None:
    detached = jws.parse(jws.sign(KEY, "k1", BODY))
    with pytest.raises(errors.SignatureError):
        jws.verify(detached, KEY.public_key(), BODY + b" ", jws.PayloadMode.EITHER)


def test_short_keys_are_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(errors.SignatureError, match="short"):
        jws.verify(jws.parse(jws.sign(weak, "k1", BODY)), weak.public_key(), BODY, jws.PayloadMode.ENCODED)


@pytest.mark.parametrize("crit", [["exp"], "b64", [1]])
def test_crit_must_be_understood(crit: object) -> None:
    header = jws.b64url_encode(json.dumps({"alg": "RS256", "kid": "k", "crit": crit}).encode())
    with pytest.raises(errors.SignatureError):
        jws.parse(f"{header}..AAAA")


def test_kid_cannot_carry_a_path() -> None:
    header = jws.b64url_encode(json.dumps({"alg": "RS256", "kid": "../../admin"}).encode())
    with pytest.raises(errors.SignatureError, match="kid") as caught:
        jws.parse(f"{header}..AAAA")
    assert caught.value.malformed


@pytest.mark.parametrize("text", ["", "a", "ab=", "a+b/", "abcde"])
def test_b64url_is_strict(text: str) -> None:
    if text == "":
        assert jws.b64url_decode(text) == b""
        return
    with pytest.raises(ValueError):
        jws.b64url_decode(text)


def test_public_keys_from_pem_and_bare_der() -> None:
    public = KEY.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert jws.load_public_key(pem).public_numbers() == public.public_numbers()
    assert jws.load_public_key(base64.b64encode(der)).public_numbers() == public.public_numbers()
    with pytest.raises(ValueError):
        jws.load_public_key(b"not a key!")
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(ValueError, match="RSA"):
        jws.load_public_key(
            ec_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )


def b64json(value: object) -> str:
    return jws.b64url_encode(json.dumps(value).encode())


RS = {"alg": "RS256", "kid": "k"}


@pytest.mark.parametrize(
    ("value", "message", "malformed"),
    [
        (None, "missing or oversized JWS-SIGNATURE header", True),
        ("", "missing or oversized JWS-SIGNATURE header", True),
        (f"{b64json(RS)}..{'A' * jws.MAX_HEADER_CHARS}", "missing or oversized JWS-SIGNATURE header", True),
        (f"{b64json(RS)}.AAAA", "JWS-SIGNATURE is not a compact JWS", True),
        (f"{b64json(RS)}...AAAA", "JWS-SIGNATURE is not a compact JWS", True),
        ("e30..A", "JWS-SIGNATURE is not valid base64url JSON", True),
        ("e30.A.AAAA", "JWS-SIGNATURE is not valid base64url JSON", True),
        ("bm90IGpzb24..AAAA", "JWS-SIGNATURE is not valid base64url JSON", True),  # "not json"
        ("_w..AAAA", "JWS-SIGNATURE is not valid base64url JSON", True),  # not UTF-8
        (f"{b64json(['RS256'])}..AAAA", "the JWS header is not a JSON object", True),
        (f"{b64json({'alg': 'none', 'kid': 'k'})}..", "JWS algorithm not accepted (only RS256)", False),
        (f"{b64json({'alg': 'HS256', 'kid': 'k'})}..AAAA", "JWS algorithm not accepted (only RS256)", False),
        (f"{b64json({'alg': 'RS256'})}..AAAA", "the JWS header has no usable kid", True),
        (f"{b64json({'alg': 'RS256', 'kid': 7})}..AAAA", "the JWS header has no usable kid", True),
        (f"{b64json({**RS, 'crit': 'b64'})}..AAAA", "the JWS crit header is malformed", True),
        (f"{b64json({**RS, 'crit': [1]})}..AAAA", "the JWS crit header is malformed", True),
        (
            f"{b64json({**RS, 'crit': ['b64', 'exp']})}..AAAA",
            "the JWS header needs extensions we do not support",
            False,
        ),
        (f"{b64json({**RS, 'b64': 'false'})}..AAAA", "the JWS b64 header is not a boolean", True),
        (f"{b64json({**RS, 'b64': 0})}..AAAA", "the JWS b64 header is not a boolean", True),
    ],
)
def test_refusals_say_why_and_whether_the_header_is_malformed(value: str | None, message: str, malformed: bool) -> None:
    with pytest.raises(errors.SignatureError) as caught:
        jws.parse(value)
    assert str(caught.value) == message
    assert caught.value.malformed is malformed


def test_a_header_value_of_exactly_the_maximum_length_is_parsed() -> None:
    padding = (jws.MAX_HEADER_CHARS - 6) * 3 // 4 - 60  # a little short of it, then one character at a time
    while len(header := b64json({**RS, "x": "y" * padding})) < jws.MAX_HEADER_CHARS - 6:
        padding += 1
    value = f"{header}..AAAA"
    assert len(value) == jws.MAX_HEADER_CHARS
    assert jws.parse(value).kid == "k"
    assert jws.parse(f" {b64json(RS)}..AAAA\r\n").kid == "k"  # surrounding whitespace is dropped


def test_the_signed_header_is_compact_and_names_its_type() -> None:
    encoded = jws.parse(jws.sign(KEY, "k1", BODY))
    assert jws.b64url_decode(encoded.header_b64) == b'{"alg":"RS256","kid":"k1","typ":"JWT"}'
    unencoded = jws.parse(jws.sign(KEY, "k1", BODY, unencoded=True))
    assert unencoded.header == {"alg": "RS256", "kid": "k1", "typ": "JWT", "b64": False, "crit": ["b64"]}


def test_b64url_round_trips_and_drops_only_padding() -> None:
    assert jws.b64url_encode(b"\x00\x00\x17") == "AAAX"
    assert jws.b64url_encode(b"\xfb\xff") == "-_8"
    for size in range(20):
        data = bytes(range(200, 200 + size))
        assert jws.b64url_decode(jws.b64url_encode(data)) == data


@pytest.mark.parametrize("text", ["A", "AAAAA", "AA=A", "AA AA", "AA+A", "AA/A"])
def test_b64url_refusal_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"^not base64url$"):
        jws.b64url_decode(text)


def test_the_mode_decides_what_the_signature_may_cover() -> None:
    encoded = jws.parse(jws.sign(KEY, "k1", BODY))
    unencoded = jws.parse(jws.sign(KEY, "k1", BODY, unencoded=True))
    as_encoded = f"{encoded.header_b64}.{jws.b64url_encode(BODY)}".encode()
    as_unencoded = encoded.header_b64.encode() + b"." + BODY
    assert jws.signing_inputs(encoded, BODY, jws.PayloadMode.EITHER) == [as_encoded, as_unencoded]
    assert jws.signing_inputs(encoded, BODY, jws.PayloadMode.UNENCODED) == [as_unencoded]
    assert jws.signing_inputs(unencoded, BODY, jws.PayloadMode.EITHER) == [unencoded.header_b64.encode() + b"." + BODY]
    with pytest.raises(errors.SignatureError) as caught:
        jws.signing_inputs(unencoded, BODY, jws.PayloadMode.ENCODED)
    assert str(caught.value) == "unencoded (b64:false) JWS payloads are not accepted"
    with pytest.raises(errors.SignatureError, match=r"^JWS signature does not verify$"):
        jws.verify(encoded, KEY.public_key(), BODY, jws.PayloadMode.UNENCODED)
    with pytest.raises(errors.SignatureError, match=r"^unencoded \(b64:false\) JWS payloads are not accepted$"):
        jws.verify(unencoded, KEY.public_key(), BODY, jws.PayloadMode.ENCODED)


def test_a_raw_body_signature_without_b64_verifies_in_either_mode() -> None:
    """No ``b64`` in the header: the encoded input is tried first, then the raw body."""
    header = b64json(RS)
    signature = KEY.sign(header.encode() + b"." + BODY, PKCS1v15(), SHA256())
    detached = jws.parse(f"{header}..{jws.b64url_encode(signature)}")
    jws.verify(detached, KEY.public_key(), BODY, jws.PayloadMode.EITHER)
    with pytest.raises(errors.SignatureError):
        jws.verify(detached, KEY.public_key(), BODY, jws.PayloadMode.ENCODED)


def test_an_attached_payload_must_be_the_body() -> None:
    header, _, signature = jws.sign(KEY, "k1", BODY).partition("..")
    attached = jws.parse(f"{header}.{jws.b64url_encode(BODY)}.{signature}")
    jws.verify(attached, KEY.public_key(), BODY, jws.PayloadMode.ENCODED)
    other = jws.parse(f"{header}.{jws.b64url_encode(b'other')}.{signature}")
    with pytest.raises(errors.SignatureError, match=r"^the JWS payload is not the request body$"):
        jws.verify(other, KEY.public_key(), BODY, jws.PayloadMode.ENCODED)


def test_a_short_key_message() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    detached = jws.parse(jws.sign(weak, "k1", BODY))
    with pytest.raises(errors.SignatureError, match=r"^the signing key is too short$"):
        jws.verify(detached, weak.public_key(), BODY, jws.PayloadMode.ENCODED)


def test_bare_der_may_be_wrapped_but_not_carry_junk() -> None:
    public = KEY.public_key()
    der = base64.b64encode(
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    wrapped = b"\n".join(der[i : i + 64] for i in range(0, len(der), 64))
    assert jws.load_public_key(b"  " + wrapped + b"\r\n").public_numbers() == public.public_numbers()
    with pytest.raises(ValueError, match=r"^not a PEM or base64 DER public key$"):
        jws.load_public_key(der[:40] + b"!" + der[40:])
    ec_der = base64.b64encode(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ValueError, match=r"^not an RSA public key$"):
        jws.load_public_key(ec_der)
