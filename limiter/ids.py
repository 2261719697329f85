"""Validation of the ids clients send: app ids (the IM's sdkappid, also a key's hash tag) and
user and group ids (bounded UTF-8 text without control characters)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from limiter.errors import InvalidRequest, shown

_APP_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def check_app_id(app: str) -> str:
    """An app id (the IM's sdkappid) is 1-64 of A-Z a-z 0-9 _ . - (no braces: it is the tag)."""
    if not isinstance(app, str) or not _APP_ID.fullmatch(app):
        raise InvalidRequest(
            "app", f"app id must be 1-64 characters of A-Z a-z 0-9 _ . - : {shown(app)}"
        )
    return app


def check_entity_id(value: object, field: str, max_bytes: int) -> str:
    """A user or group id: 1..max_bytes UTF-8 bytes, no control characters."""
    if not isinstance(value, str):
        raise InvalidRequest(field, f"must be a string, not {type(value).__name__}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidRequest(field, f"must be valid UTF-8 text: {value!r}") from None
    if size == 0 or size > max_bytes:
        raise InvalidRequest(field, f"must be 1 to {max_bytes} bytes, got {size}: {shown(value)}")
    if _CONTROL.search(value):
        raise InvalidRequest(field, f"must not contain control characters: {shown(value)}")
    return value


class IdRules:
    """The id checks of one engine's settings: id lengths and the batch maximum."""

    def __init__(self, user_max_bytes: int, group_max_bytes: int, max_batch: int) -> None:
        self.user_max_bytes = user_max_bytes
        self.group_max_bytes = group_max_bytes
        self.max_batch = max_batch

    def user(self, value: object, field: str = "user") -> str:
        """A valid user id (1..``user_max_bytes`` bytes, no control characters)."""
        return check_entity_id(value, field, self.user_max_bytes)

    def group(self, value: object, field: str = "group") -> str:
        """A valid group id (1..``group_max_bytes`` bytes, no control characters)."""
        return check_entity_id(value, field, self.group_max_bytes)

    def users(self, values: Iterable[str] | str, field: str) -> tuple[str, ...]:
        """Validated user ids in request order; duplicates count once."""
        if isinstance(values, str):
            return (self.user(values, field),)
        if not isinstance(values, Iterable) or isinstance(values, bytes | Mapping):
            raise InvalidRequest(field, "must be a list of user ids")
        values = list(values)
        if len(values) > self.max_batch:
            raise InvalidRequest(
                field, f"at most {self.max_batch} ids in one call, got {len(values)}"
            )
        return tuple(dict.fromkeys(self.user(value, field) for value in values))
