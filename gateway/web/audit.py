"""GET /v1/audit/verify: walk the audit chain and name the first broken link (admin scope)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.desk import access
from gateway.domain import audit
from gateway.store import audit_sql
from gateway.web import shapes
from gateway.web.common import json, services
from gateway.web.operation import ok, operation


@operation("GET /v1/audit/verify", "verifyAudit", access.ADMIN, ok(200, "The verdict", shapes.AuditVerdict))
async def verify(request: Request) -> Response:
    """Walk the audit chain and name the first broken link (admin scope)"""
    verdict = audit.verify([record async for record in audit_sql.records(services(request).store.db)])
    return json(
        shapes.AuditVerdict(ok=verdict.ok, checked=verdict.checked, broken_at=verdict.broken_at, reason=verdict.reason)
    )
