"""The audit log's entry: one JSON object per change (when, who, what, which field, before and
after), written by the scripts (``lib.lua``'s ``audit``) and read back as :class:`AuditEntry`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from limiter.results import AuditEntry


def opening(at: datetime, actor: str, action: str, field: str) -> str:
    """An entry without its closing brace: ``plan_write.lua`` adds ``before`` and ``after``
    (the field's stored JSON, which it alone reads)."""
    return json.dumps({"at": at.isoformat(), "actor": actor, "action": action, "field": field})[:-1]


def entry(at: datetime, actor: str, action: str, field: str, before: Any, after: Any) -> str:
    """A whole entry, when the caller knows both sides (a reconcile's counts)."""
    fields = {"at": at.isoformat(), "actor": actor, "action": action, "field": field}
    return json.dumps({**fields, "before": before, "after": after})


def parse(text: str) -> AuditEntry:
    found = json.loads(text)
    return AuditEntry(
        datetime.fromisoformat(found["at"]),
        found["actor"],
        found["action"],
        found["field"],
        found["before"],
        found["after"],
    )
