"""The gateway's error tree. Only ``gateway.web.status`` maps these to HTTP statuses.

    GatewayError
    ├── ConfigError          settings that cannot be used (every problem listed at once)
    ├── BadRequest           input that is not what the endpoint takes (400)
    │   ├── PayloadTooLarge  a body over the endpoint's limit (413)
    │   ├── UnsupportedMediaType  a body in a form the endpoint does not take (415)
    │   └── InvalidInput     well-formed input that fails validation (422)
    ├── AuthError            missing or wrong credentials (401)
    │   └── SignatureError   a webhook signature that does not verify (401, or 400 when malformed)
    ├── Forbidden            authenticated, but not allowed (403)
    ├── NotFound             no such object (404)
    ├── Conflict             the object is not in a state that allows this (409)
    │   └── ClaimRequired    a decision on an item the operator has not claimed (409)
    ├── RateLimited          too many requests (429)
    ├── InvalidTransition    a run state change the transition table forbids
    └── CallError            a call to another service failed (status_code, retry_after)
        ├── ProviderError    a flow API call failed (maybe_applied)
        │   ├── TransientProviderError   worth retrying (network, 429, 5xx)
        │   ├── PermanentProviderError   retrying will not help (4xx)
        │   └── UnsupportedOperation     the provider has no such operation
        └── SinkError        a sink delivery failed (response_bytes)
            ├── TransientSinkError
            └── PermanentSinkError

Messages never carry payload content: they name ids, keys and status codes only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class GatewayError(Exception):
    """The gateway failed."""

    code = "gateway_error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or self.code).strip())

    def __init_subclass__(cls, *, code: str | None = None, **kwargs: Any) -> None:
        """``code``: the error's code in JSON error bodies and logs; a subclass without one keeps its parent's."""
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(GatewayError, code="config_error"):
    """The configuration is not valid."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems))


class BadRequest(GatewayError, code="bad_request"):
    """The request is malformed."""


class PayloadTooLarge(BadRequest, code="payload_too_large"):
    """The request body is larger than this endpoint accepts."""


class UnsupportedMediaType(BadRequest, code="unsupported_media_type"):
    """The body is in a form this endpoint does not take."""


class InvalidInput(BadRequest, code="invalid_input"):
    """The input does not fit what is asked for."""


class AuthError(GatewayError, code="unauthorized"):
    """Missing or invalid credentials."""


class SignatureError(AuthError, code="invalid_signature"):
    """The webhook signature does not verify."""

    def __init__(self, message: str | None = None, *, malformed: bool = False) -> None:
        self.malformed = malformed
        super().__init__(message)


class Forbidden(GatewayError, code="forbidden"):
    """Not allowed."""


class NotFound(GatewayError, code="not_found"):
    """No such object."""


class Conflict(GatewayError, code="conflict"):
    """The object is not in a state that allows this."""


class ClaimRequired(Conflict, code="claim_required"):
    """The flow wants a claim before a decision (``claim_to_decide``), and the operator holds none."""


class RateLimited(GatewayError, code="rate_limited"):
    """Too many requests."""

    def __init__(self, message: str | None = None, *, retry_after: float = 1.0) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class InvalidTransition(GatewayError, code="invalid_transition"):
    """The run cannot move to that state."""


class CallError(GatewayError, code="call_error"):
    """A call to another service failed. The shared base of provider and sink errors: ``status_code`` is the
    answer's status and ``retry_after`` the wait it asked for, when known."""

    def __init__(
        self, message: str | None = None, *, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        self.status_code = status_code
        self.retry_after = retry_after
        super().__init__(message)


class ProviderError(CallError, code="provider_error"):
    """The flow API call failed.

    ``maybe_applied``: the request reached the provider and its answer was lost or was a 5xx, so the provider
    may have done the work (an ambiguous outcome). False when the call certainly had no effect (refused,
    throttled, never sent).
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        maybe_applied: bool = False,
    ) -> None:
        self.maybe_applied = maybe_applied
        super().__init__(message, status_code=status_code, retry_after=retry_after)


class TransientProviderError(ProviderError, code="provider_unavailable"):
    """The flow API call failed in a way worth retrying."""


class PermanentProviderError(ProviderError, code="provider_rejected"):
    """The flow API refused the call; retrying will not help."""


class UnsupportedOperation(ProviderError, code="unsupported_operation"):
    """The provider does not support this operation."""


class SinkError(CallError, code="sink_error"):
    """The sink delivery failed. ``response_bytes``: how much of the answer was read (never kept)."""

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        response_bytes: int | None = None,
    ) -> None:
        self.response_bytes = response_bytes
        super().__init__(message, status_code=status_code, retry_after=retry_after)


class TransientSinkError(SinkError, code="sink_unavailable"):
    """The sink delivery failed in a way worth retrying."""


class PermanentSinkError(SinkError, code="sink_rejected"):
    """The sink refused the delivery for good (for example 410 Gone)."""
