from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

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
    import json

    header = jws.b64url_encode(json.dumps({"alg": "RS256", "kid": "k", "crit": crit}).encode())
    with pytest.raises(errors.SignatureError):
        jws.parse(f"{header}..AAAA")


def test_kid_cannot_carry_a_path() -> None:
    import json

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
