"""The one place an error of the gateway becomes an HTTP status: the API's JSON errors and the UI's pages
both ask ``status_for``."""

from __future__ import annotations

from gateway.domain import errors

STATUS: list[tuple[type[errors.GatewayError], int]] = [
    (errors.PayloadTooLarge, 413),
    (errors.UnsupportedMediaType, 415),
    (errors.InvalidInput, 422),
    (errors.BadRequest, 400),
    (errors.AuthError, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.RateLimited, 429),
    (errors.UnsupportedOperation, 409),
    (errors.ProviderError, 502),
]


def status_for(exc: errors.GatewayError) -> int:
    if isinstance(exc, errors.SignatureError) and exc.malformed:
        return 400
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 500)
