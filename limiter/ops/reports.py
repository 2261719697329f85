"""Reads for operators and callers: the plan, the effective limits, usage of the app, a user
and a group, what is over a limit now, and the audit log."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from limiter.errors import InvalidRequest, Scope
from limiter.limits import EffectiveLimits, Limit
from limiter.ops.context import Context, Op
from limiter.plan import PlanState
from limiter.results import AuditEntry, GroupUsage, OverLimit, Usage, UserUsage
from limiter.store import reads
from limiter.store.keys import AppKeys
from limiter.store.requests import call

# Entries per round trip when a report walks a relation set.
SCAN_CHUNK = 5000


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
    return call(reads.user_usage(keys, ctx.ids.user(user)))


def group_usage(ctx: Context, app: str, group: str) -> Op[GroupUsage | None]:
    """A group's type and members; None when there is no such group."""
    keys = ctx.keys(app)
    return call(reads.group_usage(keys, ctx.ids.group(group)))


def audit(ctx: Context, app: str, limit: int = 50) -> Op[tuple[AuditEntry, ...]]:
    """The app's latest plan changes, newest first (at most ``audit_entries`` are kept)."""
    keys = ctx.keys(app)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidRequest("limit", "must be a whole number >= 1")
    return call(reads.audit_entries(keys, limit))


def over_limit(ctx: Context, app: str) -> Op[tuple[OverLimit, ...]]:
    """Every account count, user and group above its effective limit now (lower limits
    never evict). Reads the relation sets in chunks: memory stays flat, the cost grows
    with the app."""
    return _over_limit(ctx, app, ctx.keys(app))


def _over_limit(ctx: Context, app: str, keys: AppKeys) -> Op[tuple[OverLimit, ...]]:
    limits = yield from ctx.limits(app)
    found: list[OverLimit] = []

    def check(scope: Scope, subject: str, limit: str, count: int, cap: Limit) -> None:
        if cap.value is not None and count > cap.value:
            found.append(OverLimit(scope, subject, limit, count, cap.value))

    counts = yield from call(reads.usage(keys))
    for limit, count in dataclasses.asdict(counts).items():  # users, groups, av_chatrooms
        if limit in limits.app:  # an app-wide limit on a count the app keeps
            check("app", app, limit, count, limits.app[limit])
    for key, limit in ((keys.friends, "friends"), (keys.joined, "groups_per_user")):

        def per_user(user: str, count: int, limit: str = limit) -> None:
            check("user", user, limit, count, limits.for_user(user, limit))

        yield from _each_subject(key, per_user)
    # A group's limit depends on its type; fetch types only where the count could be over.
    capped = [cap.value for cap in limits.group_members.values() if cap.value is not None]
    lowest = min(capped, default=None)
    candidates: dict[str, int] = {}

    def collect(group: str, count: int) -> None:
        if group in limits.group_overrides or (lowest is not None and count > lowest):
            candidates[group] = count

    yield from _each_subject(keys.members, collect)
    names = list(candidates)
    for start in range(0, len(names), SCAN_CHUNK):
        chunk = names[start : start + SCAN_CHUNK]
        types = yield from call(reads.group_types(keys, chunk))
        for group, group_type in zip(chunk, types, strict=True):
            if group_type is not None:
                cap = limits.for_group(group, group_type)
                check("group", group, "group_members", candidates[group], cap)
    return tuple(found)


def _each_subject(key: str, visit: Callable[[str, int], None]) -> Op[None]:
    """Call ``visit(subject, count)`` for every subject of a relation set, in order,
    reading it ``SCAN_CHUNK`` entries per round trip."""
    after, subject, count = None, None, 0
    while True:
        entries = yield from call(reads.relation_chunk(key, after, SCAN_CHUNK))
        for entry in entries:
            head = reads.subject_of(entry)
            if head != subject:
                if subject is not None:
                    visit(subject, count)
                subject, count = head, 0
            count += 1
        if len(entries) < SCAN_CHUNK:
            break
        after = entries[-1]
    if subject is not None:
        visit(subject, count)
