"""The pipelined reads operations need, each a builder and its decoder: plans, usage, the audit
log and ledger, metering, pages of the app's sets and hashes, and the data-set marker (a user's
or a group's counts are read by scripts: ``user_counts``, ``group_counts``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from limiter.results import AuditEntry, Usage
from limiter.store import audit
from limiter.store.keys import AppKeys
from limiter.store.requests import Arg, Pipeline


def _first(replies: list[Any]) -> Any:
    return replies[0]


def plan_fields(keys: AppKeys) -> Pipeline[dict[str, str]]:
    """Every field of the app's plan hash."""
    return Pipeline((("HGETALL", keys.plan),), _first)


def plan_field(keys: AppKeys, field: str) -> Pipeline[str | None]:
    """One field of the app's plan hash (None when absent)."""
    return Pipeline((("HGET", keys.plan, field),), _first)


def usage(keys: AppKeys) -> Pipeline[Usage]:
    commands = (("SCARD", keys.users), ("HLEN", keys.groups), ("SCARD", keys.av_rooms))
    return Pipeline(commands, lambda replies: Usage(*replies))


def audit_entries(keys: AppKeys, limit: int) -> Pipeline[tuple[AuditEntry, ...]]:
    """The latest ``limit`` audit entries, newest first."""

    def decode(replies: list[Any]) -> tuple[AuditEntry, ...]:
        return tuple(audit.parse(text) for text in replies[0])

    return Pipeline((("LRANGE", keys.audit, 0, limit - 1),), decode)


def ledger(keys: AppKeys) -> Pipeline[list[str]]:
    """The purchase ledger's entries, oldest first."""
    return Pipeline((("LRANGE", keys.ledger, 0, -1),), _first)


class MonthMetering(NamedTuple):
    """A month's metering hash, the ``groups_start`` of the later months asked for, and the
    live group count now."""

    fields: dict[str, str]
    later_starts: tuple[str | None, ...]
    live_groups: int


def month_metering(keys: AppKeys, month: str, later: Sequence[str]) -> Pipeline[MonthMetering]:
    commands: list[tuple[Arg, ...]] = [("HGETALL", keys.meter(month))]
    commands += [("HGET", keys.meter(m), "groups_start") for m in later]
    commands.append(("HLEN", keys.groups))

    def decode(replies: list[Any]) -> MonthMetering:
        fields, *starts, live = replies
        return MonthMetering(fields, tuple(starts), live)

    return Pipeline(tuple(commands), decode)


def set_page(key: str, cursor: int, count: int) -> Pipeline[tuple[int, list[str]]]:
    """One SSCAN page: the next cursor (0 at the end) and the members found (a member may
    come twice while the set is resized)."""

    def decode(replies: list[Any]) -> tuple[int, list[str]]:
        next_cursor, page = replies[0]
        return int(next_cursor), page

    return Pipeline((("SSCAN", key, cursor, "COUNT", count),), decode)


def hash_page(key: str, cursor: int, count: int) -> Pipeline[tuple[int, dict[str, str]]]:
    """One HSCAN page: the next cursor (0 at the end) and the fields found."""

    def decode(replies: list[Any]) -> tuple[int, dict[str, str]]:
        next_cursor, page = replies[0]
        return int(next_cursor), page

    return Pipeline((("HSCAN", key, cursor, "COUNT", count),), decode)


def group_types(keys: AppKeys, groups: Sequence[str]) -> Pipeline[list[str | None]]:
    """Each group's type (None: no such group)."""
    return Pipeline((("HMGET", keys.groups, *groups),), _first)


def marker(key: str, candidate: str) -> Pipeline[str | None]:
    """Write the data-set marker if there is none, and read it."""
    return Pipeline((("SET", key, candidate, "NX"), ("GET", key)), lambda r: r[1], "marker")
