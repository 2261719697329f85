"""The pipelined reads operations need, each a builder and its decoder: plans, counts, usage,
the audit log and ledger, metering, relation walks and the data-set marker. Every lexical
range over a relation set is built here (``lib.lua`` has the scripts' own)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from limiter.results import AuditEntry, GroupUsage, Usage, UserUsage
from limiter.store import audit
from limiter.store.keys import AppKeys
from limiter.store.requests import Arg, Pipeline


def lexical_range(subject: str) -> tuple[str, str]:
    """The range of ``subject``'s entries ("subject\\0other") in a relation set."""
    return f"[{subject}\0", f"({subject}\1"


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


def user_usage(keys: AppKeys, user: str) -> Pipeline[UserUsage]:
    low, high = lexical_range(user)
    commands = (
        ("SISMEMBER", keys.users, user),
        ("ZLEXCOUNT", keys.friends, low, high),
        ("ZLEXCOUNT", keys.joined, low, high),
    )

    def decode(replies: list[Any]) -> UserUsage:
        registered, friends, groups = replies
        return UserUsage(user, bool(registered), friends, groups)

    return Pipeline(commands, decode)


def group_usage(keys: AppKeys, group: str) -> Pipeline[GroupUsage | None]:
    commands = (("HGET", keys.groups, group), ("ZLEXCOUNT", keys.members, *lexical_range(group)))

    def decode(replies: list[Any]) -> GroupUsage | None:
        group_type, members = replies
        return None if group_type is None else GroupUsage(group, group_type, members)

    return Pipeline(commands, decode)


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


def relation_chunk(key: str, after: str | None, size: int) -> Pipeline[list[str]]:
    """Up to ``size`` entries of a relation set in order, after entry ``after`` (None: from
    the start)."""
    low = "-" if after is None else "(" + after
    return Pipeline((("ZRANGEBYLEX", key, low, "+", "LIMIT", 0, size),), _first)


def subject_of(entry: str) -> str:
    """The subject of a relation entry ("subject\\0other")."""
    return entry.partition("\0")[0]


def group_types(keys: AppKeys, groups: Sequence[str]) -> Pipeline[list[str | None]]:
    """Each group's type (None: no such group)."""
    return Pipeline((("HMGET", keys.groups, *groups),), _first)


def marker(key: str, candidate: str) -> Pipeline[str | None]:
    """Write the data-set marker if there is none, and read it."""
    return Pipeline((("SET", key, candidate, "NX"), ("GET", key)), lambda r: r[1], "marker")
