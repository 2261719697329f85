"""JSON text from clients, parsed into a typed error instead of a crash (bad syntax, or
nesting too deep for the parser)."""

from __future__ import annotations

import json
from typing import Any

from limiter.errors import InvalidRequest


def parse_json(text: str | bytes, field: str) -> Any:
    """The value of ``text``; :class:`InvalidRequest` naming ``field`` when it is not JSON."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidRequest(field, "is not valid JSON") from None
