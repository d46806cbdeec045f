"""The OpenAPI 3.1 document of the JSON API: ``build(operations)``, from the operations declared next to the handlers
(``gateway.web.operation``) and the shapes of ``gateway.web.shapes``.

Nothing here describes a body by hand: every schema comes from the shapes' msgspec Structs
(``msgspec.json.schema_components``), and each operation's security from the scope its guard asks for.
``gateway.web.api`` builds the document that is served at ``/openapi.json``; tests check that the operations are
exactly the routes the app serves, and a schemathesis run against the live server checks that every answer matches.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from gateway import __version__
from gateway.web import guard, shapes
from gateway.web.operation import JSON, OPERATOR_TOKEN, SIGNATURE, SOURCE_TOKEN, JSONSchema, Operation, Security

REF = "#/components/schemas/{name}"
OPERATOR_ERRORS = (401, 403, 429)  # the guard (bearer credentials, scope) and the failed-auth throttle
SECURITY_BY_SCOPE: dict[str, Security] = {
    guard.PUBLIC: [],
    guard.SOURCE_AUTH: SOURCE_TOKEN,
    guard.PROVIDER_AUTH: SIGNATURE,
}  # any other scope is an operator's: OPERATOR_TOKEN

ERRORS = {
    400: "The request is malformed (bad JSON, bad query value, malformed signature headers)",
    401: "Missing or invalid credentials or signature",
    403: "The credentials lack the scope or role this needs",
    404: "No such object, source or provider",
    409: "The object is not in a state that allows this",
    413: "The body is larger than this endpoint accepts",
    415: "The body is in a form this endpoint does not take (a batch of CloudEvents)",
    422: "Well-formed input that does not fit what is asked for",
    429: "Too many requests or failed authentications; see Retry-After",
}


SECURITY_SCHEMES = {
    "operatorToken": {"type": "http", "scheme": "bearer", "description": "An operator token"},
    "metricsToken": {"type": "http", "scheme": "bearer", "description": "The [metrics] token, when set"},
    "sourceToken": {"type": "http", "scheme": "bearer", "description": "A bearer source's token"},
    "webhookSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": (
            "Standard Webhooks: webhook-id, webhook-timestamp and webhook-signature headers "
            "(svix-* accepted too), signed over the raw body"
        ),
    },
}


def build(operations: Iterable[Operation]) -> dict[str, Any]:
    """The document: every shape the operations name (and the Error shape) as a component, then the paths."""
    operations = tuple(operations)
    types: list[Any] = [shapes.Error]
    for op in operations:
        types.extend(kind for answer in op.answers for kind in answer.shapes)
        if op.body:
            types.append(op.body.shape)
    unique = list(dict.fromkeys(types))
    inline, components = msgspec.json.schema_components(unique, ref_template=REF)
    schema_of = dict(zip(unique, inline, strict=True))
    for name, schema in components.items():
        schema.pop("title", None)
        schema.update(getattr(getattr(shapes, name, None), "schema_extra", {}))
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schema_of)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gateway",
            "version": __version__,
            "description": (
                "Webhook-driven integration gateway for hosted flow APIs. Every error answer is "
                '{"error": {"code", "message"}}. Routes under /v1/ answer 429 with Retry-After after repeated '
                "failed authentication from one address."
            ),
        },
        "paths": paths,
        "components": {"schemas": dict(sorted(components.items())), "securitySchemes": SECURITY_SCHEMES},
    }


def _operation(op: Operation, schema_of: dict[Any, JSONSchema]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for answer in op.answers:
        response: dict[str, Any] = {"description": answer.description}
        if answer.shapes:
            found = [schema_of[kind] for kind in answer.shapes]
            response["content"] = {answer.media: {"schema": found[0] if len(found) == 1 else {"oneOf": found}}}
        responses[str(answer.status)] = response
    for code in sorted(set(op.errors) | implied(op)):
        error: dict[str, Any] = {"description": ERRORS[code], "content": {JSON: {"schema": schema_of[shapes.Error]}}}
        if code == 429:
            error["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
        responses[str(code)] = error
    out: dict[str, Any] = {"operationId": op.id, "summary": op.summary, "security": security(op)}
    if op.description:
        out["description"] = op.description
    if op.params:
        out["parameters"] = [param.document() for param in op.params]
    if op.body:
        schema = schema_of[op.body.shape]
        out["requestBody"] = {
            "required": op.body.required,
            "description": op.body.description,
            "content": {media: {"schema": schema} for media in op.body.media},
        }
    out["responses"] = responses
    return out


def operator(op: Operation) -> bool:
    """Whether the guard asks for an operator's bearer credentials (and so may answer 401, 403 and 429)."""
    return op.scope not in guard.NOT_OPERATOR_SCOPES


def implied(op: Operation) -> set[int]:
    """The error statuses the form of an operation brings: the guard's for an operator scope (bad or missing
    credentials, the scope lacking, the failed-auth throttle), 400 for a body or query parameters that may be
    malformed, 413 for a body that may be too large, 404 for a path parameter that may name nothing."""
    codes = set(OPERATOR_ERRORS) if operator(op) else set()
    if op.body is not None or any(param.where == "query" for param in op.params):
        codes.add(400)
    if op.body is not None:
        codes.add(413)
    if any(param.where == "path" for param in op.params):
        codes.add(404)
    return codes


def security(op: Operation) -> Security:
    """What the document says authenticates the operation: its own ``security``, else its scope's."""
    if op.security is not None:
        return op.security
    return SECURITY_BY_SCOPE.get(op.scope, OPERATOR_TOKEN)
