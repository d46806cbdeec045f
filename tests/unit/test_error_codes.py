"""Each kind of gateway error answers with its own code; a subclass without one keeps its parent's."""

from __future__ import annotations

from gateway.domain import errors
from gateway.sandbox.body import NotJson


def every_error_class() -> list[type[errors.GatewayError]]:
    found, todo = [], [errors.GatewayError]
    while todo:
        kind = todo.pop()
        found.append(kind)
        todo.extend(kind.__subclasses__())
    return found


def test_the_codes_clients_see() -> None:
    assert errors.BadRequest().code == "bad_request"
    assert errors.PayloadTooLarge().code == "payload_too_large"
    assert errors.SignatureError().code == "invalid_signature"
    assert errors.ClaimRequired().code == "claim_required"
    assert errors.TransientProviderError().code == "provider_unavailable"
    assert errors.PermanentSinkError().code == "sink_rejected"


def test_no_two_kinds_of_error_share_a_code_unless_one_inherits_it() -> None:
    owners: dict[str, type[errors.GatewayError]] = {}
    for kind in every_error_class():
        if "code" in vars(kind):
            assert kind.code not in owners, (kind, owners.get(kind.code))
            owners[kind.code] = kind
    assert "code" not in vars(NotJson)
    assert NotJson().code == errors.UnsupportedMediaType.code


def test_the_default_message_is_the_docstring() -> None:
    assert errors.NotFound().message == "No such object."
    assert errors.NotFound("no such run run_1").message == "no such run run_1"
