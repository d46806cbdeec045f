"""A minimal audit hook: one structured log line per privileged action (actor, action, object ids).

Stand-in until the hash-chained audit trail is merged; callers keep this signature, so connecting the two is one
change here. Never pass payloads: only ids, names, counts and filter values.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

log = logging.getLogger("gateway.audit")


def audit(
    *,
    actor: str,
    action: str,
    object_ids: Sequence[str],
    detail: Mapping[str, str | int | None] | None = None,
) -> None:
    extra: dict[str, str | int | None] = {f"detail_{k}": v for k, v in (detail or {}).items()}
    extra.update(actor=actor, action=action, object_ids=",".join(object_ids), object_count=len(object_ids))
    log.info("audit", extra=extra)
