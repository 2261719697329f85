"""Reads for operators and callers: the plan, the effective limits, usage of the app, a user
and a group, what is over a limit now, and the audit log."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from limiter.errors import InvalidRequest, Scope
from limiter.limits import EffectiveLimits, Limit
from limiter.ops.context import Context, Op
from limiter.plan import PlanState
from limiter.results import AuditEntry, GroupUsage, OverLimit, Usage, UserUsage
from limiter.store import reads, scripts
from limiter.store.keys import AppKeys
from limiter.store.requests import ScriptCall, call

# Users or groups per round trip when a report walks the app.
SCAN_CHUNK = 2000
T = TypeVar("T")


def plan(ctx: Context, app: str) -> Op[PlanState]:
    """The app's plan as stored now."""
    ctx.keys(app)
    return ctx.plan(app, fresh=True)


def limits(ctx: Context, app: str) -> Op[EffectiveLimits]:
    """The app's effective limits now."""
    ctx.keys(app)
    return ctx.limits(app)


def usage(ctx: Context, app: str) -> Op[Usage]:
    """The app's accounts, live groups and AV chat rooms."""
    return call(reads.usage(ctx.keys(app)))


def user_usage(ctx: Context, app: str, user: str) -> Op[UserUsage]:
    """Whether ``user`` is registered, and their friends and groups."""
    keys = ctx.keys(app)
    return _first(scripts.user_counts(keys, [ctx.ids.user(user)]))


def group_usage(ctx: Context, app: str, group: str) -> Op[GroupUsage | None]:
    """A group's type and members; None when there is no such group."""
    keys = ctx.keys(app)
    return _first(scripts.group_counts(keys, [ctx.ids.group(group)]))


def _first(counts: ScriptCall[tuple[T, ...]]) -> Op[T]:
    return (yield from call(counts))[0]


def audit(ctx: Context, app: str, limit: int = 50) -> Op[tuple[AuditEntry, ...]]:
    """The app's latest plan changes, newest first (at most ``audit_entries`` are kept)."""
    keys = ctx.keys(app)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidRequest("limit", "must be a whole number >= 1")
    return call(reads.audit_entries(keys, limit))


def over_limit(ctx: Context, app: str) -> Op[tuple[OverLimit, ...]]:
    """Every account count, user and group above its effective limit now (lower limits
    never evict). Walks the app's users and groups in pages: memory stays flat, the cost
    grows with the app."""
    return _over_limit(ctx, app, ctx.keys(app))


def _over_limit(ctx: Context, app: str, keys: AppKeys) -> Op[tuple[OverLimit, ...]]:
    limits = yield from ctx.limits(app)
    # Keyed by what is over: a page walk may meet a user or group twice.
    found: dict[tuple[Scope, str, str], OverLimit] = {}

    def check(scope: Scope, subject: str, limit: str, count: int, cap: Limit) -> None:
        if cap.value is not None and count > cap.value:
            found[scope, subject, limit] = OverLimit(scope, subject, limit, count, cap.value)

    counts = yield from call(reads.usage(keys))
    for limit, count in dataclasses.asdict(counts).items():  # users, groups, av_chatrooms
        if limit in limits.app:  # an app-wide limit on a count the app keeps
            check("app", app, limit, count, limits.app[limit])
    for index in (keys.users, keys.strays):  # every id that holds relations is in one
        cursor = None
        while cursor != 0:
            cursor, users = yield from call(reads.set_page(index, cursor or 0, SCAN_CHUNK))
            if users:
                for found_user in (yield from call(scripts.user_counts(keys, users))):
                    user = found_user.user
                    check(
                        "user",
                        user,
                        "friends",
                        found_user.friends,
                        limits.for_user(user, "friends"),
                    )
                    cap = limits.for_user(user, "groups_per_user")
                    check("user", user, "groups_per_user", found_user.groups, cap)
    cursor = None
    while cursor != 0:
        cursor, page = yield from call(reads.hash_page(keys.groups, cursor or 0, SCAN_CHUNK))
        if page:
            for group in (yield from call(scripts.group_counts(keys, list(page)))):
                if group is not None:
                    cap = limits.for_group(group.group, group.type)
                    check("group", group.group, "group_members", group.members, cap)
    order = {"app": 0, "user": 1, "group": 2}
    return tuple(found[key] for key in sorted(found, key=lambda k: (order[k[0]], k[2], k[1])))
