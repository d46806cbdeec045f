"""The OpenAPI 3.1 description of the JSON API, served at ``GET /openapi.json``.

Hand-written and versioned with the code: tests check that every route in ``gateway.web.app`` is described
here and nothing else is, and a schemathesis run against the live server checks that every answer matches.
Schemas say what the handlers in ``gateway.web`` and ``gateway.web.render`` really send.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import __version__
from gateway.core.breaker import BreakerState
from gateway.domain.desk import Order, SlaState
from gateway.domain.model import DeliveryState, JobKind, JobState, ReviewState, RunStatus
from gateway.domain.ports import PushKind
from gateway.engine.stuck import FINISHED_WITHOUT_DELIVERIES, PENDING_WITHOUT_REVIEW, QUEUED_WITHOUT_START

JSONSchema = dict[str, Any]

ID_PATTERN = "^[A-Za-z0-9_-]{1,100}$"
TIME: JSONSchema = {"type": ["string", "null"], "format": "date-time"}
TEXT_OR_NULL: JSONSchema = {"type": ["string", "null"]}


def _ref(name: str) -> JSONSchema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, JSONSchema], required: list[str] | None = None, **extra: Any) -> JSONSchema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        **extra,
    }


def _page(item: str) -> JSONSchema:
    return _object(
        {"items": {"type": "array", "items": _ref(item)}, "next_before": TEXT_OR_NULL},
        description="One page, newest first; pass next_before as before= for the next page",
    )


RUN_SUMMARY = _object(
    {
        "id": {"type": "string"},
        "event_id": {"type": "string"},
        "route": {"type": "string"},
        "flow": {"type": "string"},
        "provider": {"type": "string"},
        "template": {"type": "string"},
        "status": {"type": "string", "enum": [s.value for s in RunStatus]},
        "provider_status": TEXT_OR_NULL,
        "provider_run_id": TEXT_OR_NULL,
        "created_at": TIME,
        "updated_at": TIME,
        "finished_at": TIME,
    }
)
PENDING = _object(
    {
        "key": TEXT_OR_NULL,
        "kind": {"type": "string"},
        "message": TEXT_OR_NULL,
        "options": {"type": ["array", "null"], "items": {"type": "string"}},
        "schema": {"type": ["object", "null"]},
        "assignee": TEXT_OR_NULL,
    }
)
TRANSITION = _object(
    {
        "at": TIME,
        "from": {"type": ["string", "null"], "enum": [*(s.value for s in RunStatus), None]},
        "to": {"type": "string", "enum": [s.value for s in RunStatus]},
        "cause": {"type": "string"},
        "detail": {},
    }
)
CAPABILITIES = _object(
    {
        "can_resume": {"type": "boolean"},
        "can_cancel": {"type": "boolean"},
        "push": {"type": "string", "enum": [p.value for p in PushKind]},
    }
)
RUN_DETAIL = {
    "allOf": [
        _ref("RunSummary"),
        _object(
            {
                "input": {},
                "output": {},
                "error": {},
                "pending": {"oneOf": [_ref("PendingInput"), {"type": "null"}]},
                "capabilities": {"oneOf": [_ref("Capabilities"), {"type": "null"}]},
                "timeline": {"type": "array", "items": _ref("Transition")},
            }
        ),
    ]
}
REVIEW_SUMMARY = _object(
    {
        "id": {"type": "string"},
        "run_id": {"type": "string"},
        "flow": {"type": "string"},
        "state": {"type": "string", "enum": [s.value for s in ReviewState]},
        "waiting_in": TEXT_OR_NULL,
        "age_seconds": {"type": "integer", "minimum": 0},
        "created_at": TIME,
        "priority": {"type": "integer"},
        "escalated_to": TEXT_OR_NULL,
        "sla_state": {"type": "string", "enum": [s.value for s in SlaState]},
        "claim_due_at": TIME,
        "decide_due_at": TIME,
        "expires_at": TIME,
        "claimed_by": {"type": ["string", "null"], "description": "Who holds a live claim"},
        "claim_expires_at": TIME,
        "approvals_needed": {"type": "integer", "minimum": 0},
        "awaiting_approval": {"type": "boolean"},
        "decided_by": TEXT_OR_NULL,
        "decided_at": TIME,
    },
    description="A queue item without its payload",
)
REVIEW_DETAIL = {
    "allOf": [
        _ref("ReviewSummary"),
        _object(
            {
                "run_status": {"type": ["string", "null"], "enum": [*(s.value for s in RunStatus), None]},
                "template": TEXT_OR_NULL,
                "asks_for": _ref("PendingInput"),
                "proposal_digest": TEXT_OR_NULL,
                "proposed_by": TEXT_OR_NULL,
                "approvals": {"type": "array", "items": {"type": "string"}},
                "gathered": {"description": "Only for roles that may see payloads"},
                "decision": {"description": "Only for roles that may see payloads"},
                "proposal": {"description": "Only for roles that may see payloads"},
            },
            required=["run_status", "template", "asks_for", "proposal_digest", "proposed_by", "approvals"],
        ),
    ]
}
DECIDED = _object(
    {
        "id": {"type": "string"},
        "state": {"type": "string", "const": ReviewState.DECIDED.value},
        "decided_by": {"type": "string"},
        "decided_at": {"type": "string", "format": "date-time"},
        "input_digest": {"type": "string"},
    },
    description="Decided; the resume is queued",
)
PROPOSED = _object(
    {
        "id": {"type": "string"},
        "state": {"type": "string", "const": ReviewState.OPEN.value},
        "awaiting_approvals": {"type": "integer", "minimum": 1},
        "proposal_digest": {"type": "string"},
        "proposed_by": {"type": "string"},
    },
    description="Four-eyes: the decision is a proposal awaiting approval",
)
APPROVED = _object(
    {
        "id": {"type": "string"},
        "state": {"type": "string", "enum": [ReviewState.OPEN.value, ReviewState.DECIDED.value]},
        "approvals": {"type": "integer", "minimum": 1},
    },
    description="The approval is recorded; DECIDED once enough approvers agreed (the resume is then queued)",
)
AUDIT_RECORD = _object(
    {
        "seq": {"type": "integer", "minimum": 1},
        "at": {"type": "string", "format": "date-time"},
        "at_us": {"type": "integer"},
        "actor": {"type": "string"},
        "action": {"type": "string"},
        "object": {"type": "string"},
        "details": {"type": "object"},
        "prev_hash": {"type": "string"},
        "hash": {"type": "string"},
    }
)
AUDIT_VERDICT = _object(
    {
        "ok": {"type": "boolean"},
        "checked": {"type": "integer", "minimum": 0},
        "broken_at": {"type": ["integer", "null"], "description": "The seq of the first row that does not verify"},
        "reason": TEXT_OR_NULL,
    }
)
BREAKER = _object(
    {
        "state": {"type": "string", "enum": [s.value for s in BreakerState]},
        "consecutive_failures": {"type": "integer", "minimum": 0},
        "recent_failures": {"type": "integer", "minimum": 0},
        "recent_calls": {"type": "integer", "minimum": 0},
        "opened_at": TIME,
    }
)
STUCK_RUN = _object(
    {
        "run_id": {"type": "string"},
        "problem": {
            "type": "string",
            "enum": [PENDING_WITHOUT_REVIEW, FINISHED_WITHOUT_DELIVERIES, QUEUED_WITHOUT_START],
        },
        "status": {"type": "string", "enum": [s.value for s in RunStatus]},
        "flow": {"type": "string"},
        "provider": {"type": "string"},
        "sinks": {"type": "array", "items": {"type": "string"}},
    }
)
REPLAY_QUERY = _object(
    {
        "sink": {"type": "string", "minLength": 1, "maxLength": 200},
        "state": {
            "type": "string",
            "enum": [DeliveryState.DEAD.value, DeliveryState.DELIVERED.value],
            "default": DeliveryState.DEAD.value,
        },
        "created_after": {"type": "string", "format": "date-time", "maxLength": 64},
        "created_before": {"type": "string", "format": "date-time", "maxLength": 64},
        "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    },
    required=[],
    additionalProperties=False,
    description="Which finished deliveries to send again; times are ISO 8601 with an offset",
)
DELIVERY = _object(
    {
        "id": {"type": "string"},
        "run_id": {"type": "string"},
        "sink": {"type": "string"},
        "state": {"type": "string", "enum": [s.value for s in DeliveryState]},
        "attempts": {"type": "integer", "minimum": 0},
        "next_attempt_at": TIME,
        "last_error": TEXT_OR_NULL,
        "last_status_code": {"type": ["integer", "null"]},
        "created_at": TIME,
        "delivered_at": TIME,
    }
)
DELIVERY_ATTEMPT = _object(
    {
        "attempt": {"type": "integer", "minimum": 1},
        "at": {"type": "string", "format": "date-time"},
        "duration_ms": {"type": "number", "minimum": 0},
        "status_code": {"type": ["integer", "null"]},
        "error": TEXT_OR_NULL,
        "response_bytes": {"type": ["integer", "null"], "description": "How much of the answer was read; never kept"},
    }
)
DEAD_JOB = _object(
    {
        "id": {"type": "integer"},
        "kind": {"type": "string", "enum": [k.value for k in JobKind]},
        "ref": {"type": "string", "description": "The run, review or delivery the job works on"},
        "state": {"type": "string", "enum": [s.value for s in JobState]},
        "attempts": {"type": "integer", "minimum": 0},
        "due_at": {"type": "string", "format": "date-time"},
        "last_error": TEXT_OR_NULL,
    }
)
SINK_STATE = _object(
    {
        "sink": {"type": "string"},
        "disabled": {"type": "boolean"},
        "disabled_at": TIME,
        "disabled_reason": TEXT_OR_NULL,
        "failing_since": TIME,
    }
)
EVENT_ACCEPTED = _object(
    {
        "event_id": {"type": "string"},
        "runs": {
            "type": "array",
            "items": _object(
                {
                    "id": {"type": "string"},
                    "route": {"type": "string"},
                    "status": {"type": "string", "enum": [s.value for s in RunStatus]},
                }
            ),
        },
    }
)
CLOUD_EVENT = _object(
    {
        "specversion": {"type": "string", "const": "1.0"},
        "id": {"type": "string", "minLength": 1, "maxLength": 1024},
        "source": {"type": "string", "minLength": 1, "maxLength": 1024},
        "type": {"type": "string", "minLength": 1, "maxLength": 1024},
        "subject": {"type": "string", "maxLength": 1024},
        "time": {"type": "string", "format": "date-time", "maxLength": 1024},
        "datacontenttype": {"type": "string", "maxLength": 1024},
        "dataschema": {"type": "string", "format": "uri", "maxLength": 1024},
        "data": {},
        "data_base64": {"type": "string", "contentEncoding": "base64"},
    },
    required=["specversion", "id", "source", "type"],
    description=(
        "A CloudEvents 1.0 event in structured mode. Binary mode (ce-* headers, percent-encoded UTF-8, the data as "
        "the body) is also accepted; batched mode (application/cloudevents-batch+json) is refused with 415. "
        "Extension attributes are 1-20 lower-case letters or digits with string, integer or "
        "boolean values; data and data_base64 exclude each other."
    ),
    additionalProperties={"type": ["string", "integer", "boolean"]},
)
ERROR = _object(
    {
        "error": _object(
            {"code": {"type": "string"}, "message": {"type": "string"}},
            additionalProperties=False,
        )
    },
    additionalProperties=False,
)

SCHEMAS: dict[str, JSONSchema] = {
    "Error": ERROR,
    "CloudEvent": CLOUD_EVENT,
    "EventAccepted": EVENT_ACCEPTED,
    "RunSummary": RUN_SUMMARY,
    "RunDetail": RUN_DETAIL,
    "RunListItem": {
        "allOf": [_ref("RunSummary"), _object({"capabilities": {"oneOf": [_ref("Capabilities"), {"type": "null"}]}})]
    },
    "RunPage": _page("RunListItem"),
    "DeliveryAttempts": _object({"items": {"type": "array", "items": DELIVERY_ATTEMPT}}),
    "DeadJob": DEAD_JOB,
    "DeadJobPage": _object(
        {"items": {"type": "array", "items": _ref("DeadJob")}, "next_after": TEXT_OR_NULL},
        description="Oldest first; pass next_after as after= for the next page",
    ),
    "SinkState": SINK_STATE,
    "SinkStates": _object({"items": {"type": "array", "items": _ref("SinkState")}}),
    "CancelRequested": {"allOf": [_ref("RunSummary"), _object({"cancel": {"type": "string", "const": "requested"}})]},
    "PendingInput": PENDING,
    "Capabilities": CAPABILITIES,
    "Transition": TRANSITION,
    "ReviewSummary": REVIEW_SUMMARY,
    "ReviewDetail": REVIEW_DETAIL,
    "ReviewPage": _object(
        {"items": {"type": "array", "items": _ref("ReviewSummary")}, "next_after": TEXT_OR_NULL},
        description="One page; pass next_after as after= for the next page",
    ),
    "Decision": _object({"input": {"description": "What the paused run asks for (see asks_for)"}}),
    "Decided": DECIDED,
    "Proposed": PROPOSED,
    "Reassign": _object(
        {
            "to": {"type": "string", "description": "An operator who may decide reviews"},
            "reason": {"type": "string", "description": "1 to 500 characters"},
        }
    ),
    "Approve": _object(
        {"proposal_digest": {"type": "string", "description": "The proposal looked at; 409 if it changed"}},
        required=[],
    ),
    "Reject": _object({"reason": {"type": "string", "description": "1 to 500 characters"}}),
    "Approved": APPROVED,
    "AuditRecord": AUDIT_RECORD,
    "AuditTrail": _object({"items": {"type": "array", "items": _ref("AuditRecord")}}),
    "AuditVerdict": AUDIT_VERDICT,
    "Breaker": BREAKER,
    "Breakers": _object(
        {"breakers": {"type": "object", "additionalProperties": _ref("Breaker")}},
        description="One circuit breaker per sink and provider that has been called",
    ),
    "StuckRun": STUCK_RUN,
    "StuckRuns": _object({"items": {"type": "array", "items": _ref("StuckRun")}}),
    "Adoption": _object({"provider_run_id": {"type": "string", "pattern": "^[!-~]{1,200}$"}}, ["provider_run_id"]),
    "OrphanRun": _object(
        {
            "provider": {"type": "string"},
            "provider_run_id": {"type": "string"},
            "notifications": {"type": "integer", "minimum": 1},
            "first_received_at": {"type": "string", "format": "date-time"},
            "last_received_at": {"type": "string", "format": "date-time"},
            "last_status": TEXT_OR_NULL,
            "last_state_id": TEXT_OR_NULL,
        }
    ),
    "OrphanRuns": _object({"items": {"type": "array", "items": _ref("OrphanRun")}}),
    "RepairedRuns": _object({"repaired": {"type": "array", "items": _ref("StuckRun")}}),
    "ReplayQuery": REPLAY_QUERY,
    "Replayed": _object(
        {"replayed": {"type": "integer", "minimum": 0}, "items": {"type": "array", "items": _ref("Delivery")}}
    ),
    "Delivery": DELIVERY,
    "DeliveryPage": _page("Delivery"),
    "Notification": _object(
        {
            "event": {"type": "string"},
            "flowRunId": {"type": "string"},
            "status": {"type": "string"},
            "stateId": {"type": "string"},
        },
        required=["event", "flowRunId"],
        description="A provider's status notification (Sohar: flow.updated), signed over the raw body",
    ),
}

ERRORS = {
    "400": "The request is malformed (bad JSON, bad query value, malformed signature headers)",
    "401": "Missing or invalid credentials or signature",
    "403": "The credentials lack the scope or role this needs",
    "404": "No such object, source or provider",
    "409": "The object is not in a state that allows this",
    "413": "The body is larger than this endpoint accepts",
    "415": "The body is in a form this endpoint does not take (a batch of CloudEvents)",
    "422": "Well-formed input that does not fit what is asked for",
    "429": "Too many requests or failed authentications; see Retry-After",
}


def _error_responses(*codes: str) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for code in codes:
        response: dict[str, Any] = {
            "description": ERRORS[code],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        if code == "429":
            response["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
        responses[code] = response
    return responses


def _ok(status: str, description: str, schema: JSONSchema) -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {"schema": schema}}}}


def _path_param(name: str, description: str) -> JSONSchema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": ID_PATTERN},
    }


def _query(name: str, schema: JSONSchema, description: str) -> JSONSchema:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _text_query(name: str, description: str) -> JSONSchema:
    return _query(name, {"type": "string", "minLength": 1, "maxLength": 200}, description)


LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "Page size")
BEFORE = _text_query("before", "Return items older than this id (next_before of the previous page)")
STUCK_LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}, "At most this many")
OPERATOR: list[dict[str, list[str]]] = [{"operatorToken": []}]
SOURCE: list[dict[str, list[str]]] = [{"sourceToken": []}]

EVENT_BODY = {
    "required": True,
    "description": "At most 1 MiB",
    "content": {
        "application/cloudevents+json": {"schema": _ref("CloudEvent")},
        "application/json": {"schema": _ref("CloudEvent")},
    },
}
EVENT_RESPONSES = {
    **_ok("202", "Stored; one queued run per matching route", _ref("EventAccepted")),
    **_ok(
        "200", "This (source, id) was seen before; the first answer again, nothing new started", _ref("EventAccepted")
    ),
    **_error_responses("400", "401", "404", "413", "415", "429"),
}


def _operation(
    op_id: str, summary: str, responses: dict[str, Any], *, security: Any = OPERATOR, **extra: Any
) -> dict[str, Any]:
    return {"operationId": op_id, "summary": summary, "security": security, "responses": responses, **extra}


OPERATOR_ERRORS = ("401", "403", "429")  # the guard (bearer credentials, scope) and the failed-auth throttle


def _operator(
    method: str,
    op_id: str,
    summary: str,
    ok: dict[str, Any],
    errors: tuple[str, ...],
    params: list[JSONSchema],
    **extra: Any,
) -> dict[str, Any]:
    """One operator operation: guarded by bearer credentials with a scope (401, 403) on a /v1/ path (429)."""
    codes = sorted(set(errors) | set(OPERATOR_ERRORS))
    responses = {**ok, **_error_responses(*codes)}
    return {method: _operation(op_id, summary, responses, **extra), **({"parameters": params} if params else {})}


def _operator_get(op_id: str, summary: str, schema: str, params: list[JSONSchema], not_found: bool) -> dict[str, Any]:
    codes = ("404",) if not_found else ("400",)
    return _operator("get", op_id, summary, _ok("200", summary, _ref(schema)), codes, params)


def _retry(op_id: str, summary: str, param: JSONSchema, schema: str) -> dict[str, Any]:
    return _operator("post", op_id, summary, _ok("202", "Queued again", _ref(schema)), ("404", "409"), [param])


def _json_body(schema: str, description: str, *, required: bool = True) -> dict[str, Any]:
    return {
        "required": required,
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }


def _review_action(
    op_id: str, summary: str, ok: dict[str, Any], errors: tuple[str, ...], **extra: Any
) -> dict[str, Any]:
    return _operator("post", op_id, summary, ok, ("404", "409", *errors), [REVIEW_ID], **extra)


RUN_ID = _path_param("run_id", "A run id (run_...)")
REVIEW_ID = _path_param("review_id", "A review id (rev_...)")
DELIVERY_ID = _path_param("delivery_id", "A delivery id (dlv_...)")

PATHS: dict[str, Any] = {
    "/healthz": {
        "get": _operation(
            "healthz",
            "The process answers",
            _ok("200", "Alive", _object({"status": {"type": "string", "const": "ok"}})),
            security=[],
        )
    },
    "/readyz": {
        "get": _operation(
            "readyz",
            "The store answers and every migration is applied",
            {
                **_ok(
                    "200",
                    "Ready",
                    _object(
                        {
                            "status": {"type": "string", "const": "ready"},
                            "store": {"type": "string"},
                            "pending_migrations": {"type": "array", "maxItems": 0},
                        },
                        required=["status"],
                    ),
                ),
                **_ok(
                    "503",
                    "Not ready",
                    _object({"status": {"type": "string", "const": "unavailable"}}, required=["status"]),
                ),
            },
            security=[],
        )
    },
    "/": {
        "get": _operation(
            "home", "Redirects to the operator review desk", {"303": {"description": "To /ui/reviews"}}, security=[]
        )
    },
    "/ui": {
        "get": _operation(
            "desk", "Redirects to the operator review desk", {"303": {"description": "To /ui/reviews"}}, security=[]
        )
    },
    "/openapi.json": {
        "get": _operation(
            "openapi", "This document", _ok("200", "The OpenAPI 3.1 document", {"type": "object"}), security=[]
        )
    },
    "/v1/events": {
        "post": _operation(
            "submitEvent",
            "Submit a CloudEvent from an internal system (bearer token names the source)",
            EVENT_RESPONSES,
            security=SOURCE,
            requestBody=EVENT_BODY,
        )
    },
    "/v1/events/{source}": {
        "post": _operation(
            "submitEventForSource",
            "Submit a CloudEvent for a named source (bearer token or Standard Webhooks signature)",
            EVENT_RESPONSES,
            security=[{"sourceToken": []}, {"webhookSignature": []}],
            requestBody=EVENT_BODY,
        ),
        "parameters": [
            {
                "name": "source",
                "in": "path",
                "required": True,
                "description": "A source name from the configuration",
                "schema": {"type": "string", "pattern": ID_PATTERN},
            }
        ],
    },
    "/v1/webhooks/{provider}": {
        "post": _operation(
            "receiveNotification",
            "A provider's signed status notification",
            {
                **_ok(
                    "202",
                    "Verified and recorded",
                    _object({"status": {"type": "string", "const": "accepted"}, "run_id": TEXT_OR_NULL}),
                ),
                **_ok(
                    "200",
                    "This message id was seen before (duplicate), or it is about nothing the gateway follows",
                    _object({"status": {"type": "string", "enum": ["duplicate", "ignored"]}}),
                ),
                **_error_responses("400", "401", "404", "413", "429"),
            },
            security=[{"webhookSignature": []}],
            requestBody={
                "required": True,
                "description": "At most 256 KiB; verified over the raw bytes",
                "content": {"application/json": {"schema": _ref("Notification")}},
            },
        ),
        "parameters": [
            {
                "name": "provider",
                "in": "path",
                "required": True,
                "description": "A provider name from the configuration",
                "schema": {"type": "string", "pattern": ID_PATTERN},
            }
        ],
    },
    "/v1/runs": _operator_get(
        "listRuns",
        "Runs, newest first",
        "RunPage",
        [
            _query("status", {"type": "string", "enum": [s.value for s in RunStatus]}, "Only runs in this status"),
            _text_query("flow", "Only runs of this flow"),
            _text_query("route", "Only runs started by this route"),
            _text_query("provider", "Only runs on this provider"),
            _text_query("event_id", "Only runs started by this event"),
            BEFORE,
            LIMIT,
        ],
        not_found=False,
    ),
    "/v1/runs/stuck": _operator(
        "get",
        "listStuckRuns",
        "Runs in a state the pipeline should never leave them in",
        _ok("200", "What is stuck", _ref("StuckRuns")),
        ("400", "404"),
        [STUCK_LIMIT],
    ),
    "/v1/runs/stuck/repair": _operator(
        "post",
        "repairStuckRuns",
        "Repair the stuck runs that are safe to repair (a run that moved meanwhile is skipped)",
        _ok("200", "The runs repaired", _ref("RepairedRuns")),
        ("400", "404"),
        [STUCK_LIMIT],
    ),
    "/v1/runs/{run_id}": _operator_get("getRun", "One run with its timeline", "RunDetail", [RUN_ID], True),
    "/v1/runs/{run_id}/retry": _retry("retryRun", "Start a FAILED_TO_START or HELD run again", RUN_ID, "RunSummary"),
    "/v1/runs/{run_id}/abandon": _operator(
        "post",
        "abandonRun",
        "Give up on a HELD run (its start's outcome is unknown): it ends FAILED_TO_START",
        _ok("200", "The run, FAILED_TO_START", _ref("RunSummary")),
        ("404", "409"),
        [RUN_ID],
    ),
    "/v1/runs/{run_id}/adopt": _operator(
        "post",
        "adoptRun",
        "A HELD run is this provider run (the lost start did start it): record its id and fetch it",
        _ok("202", "The run, CREATED; a fetch is queued", _ref("RunSummary")),
        ("400", "404", "409", "413", "422"),
        [RUN_ID],
        requestBody=_json_body("Adoption", "The provider's id of the run"),
    ),
    "/v1/notifications/orphans": _operator(
        "get",
        "listOrphanNotifications",
        "Provider runs the gateway does not know, seen in notifications, most recently heard from first",
        _ok("200", "The orphan provider runs", _ref("OrphanRuns")),
        ("400",),
        [_text_query("provider", "Only this provider"), LIMIT],
    ),
    "/v1/runs/{run_id}/cancel": _operator(
        "post",
        "cancelRun",
        "Queue a cancel of a live run",
        _ok("202", "The cancel is queued", _ref("CancelRequested")),
        ("404", "409"),
        [RUN_ID],
        description=(
            "409 with code conflict when the run has finished, unsupported_operation when its provider cannot cancel"
        ),
    ),
    "/v1/reviews": _operator_get(
        "listReviews",
        "Review items, newest or most urgent first",
        "ReviewPage",
        [
            _query(
                "state",
                {"type": "string", "enum": [*(s.value for s in ReviewState), "any"]},
                "Review state (default OPEN; any for every state)",
            ),
            _text_query("flow", "Only reviews of this flow"),
            _text_query("assignee", "Only items claimed by this operator (me: the caller; none: unclaimed)"),
            _query(
                "older_than",
                {"type": "string", "pattern": "^[0-9]{1,9}$"},
                "Only items opened at least this many seconds ago",
            ),
            _query("sla", {"type": "string", "enum": [s.value for s in SlaState]}, "Only items in this SLA state"),
            _query("order", {"type": "string", "enum": [o.value for o in Order], "default": "newest"}, "Sort order"),
            _text_query("after", "Return items after this cursor (next_after of the previous page)"),
            LIMIT,
        ],
        not_found=False,
    ),
    "/v1/reviews/{review_id}": _operator_get(
        "getReview", "One review item (the payload only for roles that may see it)", "ReviewDetail", [REVIEW_ID], True
    ),
    "/v1/reviews/{review_id}/audit": _operator_get(
        "getReviewAudit", "The audit trail of one review item", "AuditTrail", [REVIEW_ID], True
    ),
    "/v1/reviews/{review_id}/decision": _review_action(
        "decideReview",
        "Decide an OPEN review; the run is resumed with the input (with four-eyes: a proposal to approve)",
        {
            "202": {
                "description": "Decided (the resume is queued), or proposed when the flow needs approvals",
                "content": {"application/json": {"schema": {"oneOf": [_ref("Decided"), _ref("Proposed")]}}},
            }
        },
        ("400", "413", "422"),
        requestBody=_json_body("Decision", "At most 64 KiB"),
        parameters=[
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "The same key with the same input answers the first answer again",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        ],
    ),
    "/v1/reviews/{review_id}/claim": _review_action(
        "claimReview",
        "Claim an OPEN review (or renew one's own claim)",
        _ok("200", "Claimed", _ref("ReviewSummary")),
        (),
    ),
    "/v1/reviews/{review_id}/release": _review_action(
        "releaseReview",
        "Release one's own claim on an OPEN review",
        _ok("200", "Released", _ref("ReviewSummary")),
        (),
    ),
    "/v1/reviews/{review_id}/reassign": _review_action(
        "reassignReview",
        "Hand an OPEN review to another operator (the claimer or an approver)",
        _ok("200", "Reassigned", _ref("ReviewSummary")),
        ("400", "413", "422"),
        requestBody=_json_body("Reassign", "At most 64 KiB"),
    ),
    "/v1/reviews/{review_id}/approve": _review_action(
        "approveReview",
        "Four-eyes: approve the decision proposed on an OPEN review (approver role)",
        _ok("202", "Approved", _ref("Approved")),
        ("400", "413"),
        requestBody=_json_body("Approve", "At most 64 KiB; may be empty", required=False),
    ),
    "/v1/reviews/{review_id}/reject": _review_action(
        "rejectReview",
        "Four-eyes: reject the decision proposed on an OPEN review (approver role)",
        _ok("200", "The proposal is withdrawn; the item stays OPEN", _ref("ReviewSummary")),
        ("400", "413", "422"),
        requestBody=_json_body("Reject", "At most 64 KiB"),
    ),
    "/v1/audit/verify": _operator(
        "get",
        "verifyAudit",
        "Walk the audit chain and name the first broken link (admin scope)",
        _ok("200", "The verdict", _ref("AuditVerdict")),
        (),
        [],
    ),
    "/v1/health/breakers": _operator(
        "get",
        "listBreakers",
        "The circuit breaker of every sink and provider that has been called",
        _ok("200", "The breakers", _ref("Breakers")),
        (),
        [],
    ),
    "/v1/deliveries": _operator_get(
        "listDeliveries",
        "Sink deliveries, newest first",
        "DeliveryPage",
        [
            _query(
                "state", {"type": "string", "enum": [s.value for s in DeliveryState]}, "Only deliveries in this state"
            ),
            _text_query("run_id", "Only deliveries of this run"),
            _text_query("sink", "Only deliveries to this sink"),
            BEFORE,
            LIMIT,
        ],
        not_found=False,
    ),
    "/v1/deliveries/replay": _operator(
        "post",
        "replayDeliveries",
        "Send finished deliveries again, filtered by sink, state and creation time; each keeps its id",
        _ok("202", "Queued again", _ref("Replayed")),
        ("400", "413", "422"),
        [],
        requestBody=_json_body("ReplayQuery", "At most 64 KiB"),
    ),
    "/v1/deliveries/{delivery_id}": _operator_get("getDelivery", "One delivery", "Delivery", [DELIVERY_ID], True),
    "/v1/deliveries/{delivery_id}/retry": _retry(
        "retryDelivery", "Send a delivery again with the same delivery id", DELIVERY_ID, "Delivery"
    ),
    "/v1/deliveries/{delivery_id}/attempts": _operator_get(
        "listDeliveryAttempts",
        "Every attempt of a delivery, oldest first (never a body)",
        "DeliveryAttempts",
        [DELIVERY_ID],
        not_found=True,
    ),
    "/v1/jobs/dead": _operator_get(
        "listDeadJobs",
        "Jobs that gave up (buried), oldest first",
        "DeadJobPage",
        [
            _query("kind", {"type": "string", "enum": [k.value for k in JobKind]}, "Only jobs of this kind"),
            _text_query("after", "Return jobs after this id (next_after of the previous page)"),
            LIMIT,
        ],
        not_found=False,
    ),
    "/v1/jobs/{job_id}/retry": _retry(
        "retryJob",
        "Queue a dead job again with a fresh attempt budget (a delivery job: its delivery, same id)",
        _path_param("job_id", "A job id (an integer)"),
        "DeadJob",
    ),
    "/v1/sinks": _operator(
        "get",
        "listSinks",
        "Every configured sink: disabled or not, failing since",
        _ok("200", "The sinks", _ref("SinkStates")),
        (),
        [],
    ),
    "/v1/sinks/{sink}/enable": _operator(
        "post",
        "enableSink",
        "Enable a sink disabled after 410 Gone or too long failing",
        _ok("200", "Enabled", _ref("SinkState")),
        ("404", "409"),
        [_path_param("sink", "A sink name from the config")],
    ),
    "/metrics": {
        "get": _operation(
            "metrics",
            "Prometheus metrics (text format); a bearer token when [metrics] token_env is set",
            {
                "200": {
                    "description": "The metrics",
                    "content": {"text/plain; version=0.0.4; charset=utf-8": {"schema": {"type": "string"}}},
                },
                **_error_responses("401"),
            },
            security=[{"metricsToken": []}, {}],
        )
    },
}

DOCUMENT: dict[str, Any] = {
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
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
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
        },
    },
}


async def openapi_json(request: Request) -> Response:
    return JSONResponse(DOCUMENT)
