"""Groups: creating one with its owner and initial members (10036, 10037, 10038), adding
members against the group's size and each member's ``groups_per_user`` (10014, 10037),
removing members and destroying groups."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from limiter.catalog import GroupType
from limiter.errors import GroupExists, GroupNotFound, Refusal
from limiter.limits import EffectiveLimits, Limit
from limiter.ops.context import Context, Op, cap
from limiter.ops.decisions import (
    NOT_REGISTERED,
    all_absent,
    all_added,
    guarded,
    judge,
    not_registered,
    raise_first_refusal,
    refusal,
    refuse,
    require_active,
    shadowed,
)
from limiter.results import BatchResult, GroupCreated, GroupDestroyed, Item, MembersResult, Outcome
from limiter.store import scripts
from limiter.store.keys import AppKeys
from limiter.store.requests import call


@dataclass(frozen=True)
class _NewGroup:
    """A checked ``create_group`` request."""

    app: str
    keys: AppKeys
    group: str
    type: str
    spec: GroupType
    people: tuple[str, ...]  # the owner first, then the members, each once


def create_group(
    ctx: Context, app: str, group: str, type: str, owner: str, members: Iterable[str] = ()
) -> Op[GroupCreated]:
    """Create a group with its owner (a member) and initial members, all or nothing.

    Raises :class:`Refused` with 10036 (AV chat rooms), 10038 (too many initial members)
    or 10037 (the owner or a member is at groups_per_user); :class:`GroupExists`;
    :class:`NotRegistered` (accounts first: the owner or a member is not an account).
    """
    keys = ctx.keys(app)
    group = ctx.ids.group(group)
    group_type = ctx.catalog.group_type(type)
    spec = ctx.catalog.group_types[group_type]
    owner = ctx.ids.user(owner, "owner")
    people = tuple(dict.fromkeys((owner, *ctx.ids.users(members, "members"))))
    new = _NewGroup(app, keys, group, group_type, spec, people)
    degraded = GroupCreated(app, group, group_type, len(people), degraded=True)
    return guarded(ctx, _create(ctx, new), lambda: degraded, "create_group")


def _create(ctx: Context, new: _NewGroup) -> Op[GroupCreated]:
    limits = yield from ctx.limits(new.app)
    require_active(ctx, new.app, limits)
    group_limit = limits.for_group(new.group, new.type)
    rooms_limit = limits.app["av_chatrooms"]
    per_user = {person: limits.for_user(person, "groups_per_user") for person in new.people}
    script = scripts.create_group(
        new.keys,
        new.group,
        new.type,
        cap(group_limit),
        cap(rooms_limit),
        ctx.metering(new.keys),
        new.people,
        [cap(per_user[person]) for person in new.people],
        counted=new.spec.counts_toward_groups_per_user,
        av_chatroom=new.spec.av_chatroom,
        shadow=(
            ctx.in_shadow("group_members"),
            ctx.in_shadow("av_chatrooms"),
            ctx.in_shadow("groups_per_user"),
        ),
        require_registered=ctx.settings.require_registered,
    )
    status, subject, count, reported = yield from call(script)
    if status == 10021:
        raise GroupExists(new.app, new.group)
    if status == NOT_REGISTERED:
        raise not_registered(ctx, new.app, (subject, *(found.subject for found in reported)))
    refused = partial(_create_refusal, ctx, limits, new, group_limit, rooms_limit, per_user)
    others = tuple(refused(*found) for found in reported)
    if status:
        raise refuse(ctx, refused(status, subject, count), others)
    for waived in others:
        shadowed(ctx, waived)
    ctx.stats.decisions[("group_members", "allowed")] += 1
    return GroupCreated(new.app, new.group, new.type, count, others)


def _create_refusal(
    ctx: Context,
    limits: EffectiveLimits,
    new: _NewGroup,
    group_limit: Limit,
    rooms_limit: Limit,
    per_user: dict[str, Limit],
    code: int,
    subject: str,
    count: int,
) -> Refusal:
    if code == 10036:
        return refusal(ctx, limits, code, "av_chatrooms", "app", new.app, count, rooms_limit)
    if code == 10038:
        return refusal(
            ctx, limits, code, "group_members", "group", new.group, count, group_limit, new.type
        )
    found = per_user[subject]
    return refusal(ctx, limits, code, "groups_per_user", "user", subject, count, found)


def add_members(
    ctx: Context,
    app: str,
    group: str,
    users: Iterable[str] | str,
    *,
    all_or_nothing: bool = False,
) -> Op[MembersResult]:
    """Add users to a group. Per user: added, already, or refused 10037 (their own
    groups_per_user); if the eligible ones do not all fit, :class:`Refused` 10014 and
    nothing changes; not_registered for a user that is not an account (accounts first).
    ``all_or_nothing``: a 10037 also refuses the whole call (a user that is not an account:
    :class:`NotRegistered`)."""
    keys = ctx.keys(app)
    group = ctx.ids.group(group)
    ids = ctx.ids.users(users, "users")

    def degraded() -> MembersResult:
        return MembersResult(app, all_added(app, ids).items, degraded=True, group=group, size=0)

    decided = _add_members(ctx, app, keys, group, ids, all_or_nothing)
    return guarded(ctx, decided, degraded, "add_members")


def _add_members(
    ctx: Context,
    app: str,
    keys: AppKeys,
    group: str,
    ids: tuple[str, ...],
    all_or_nothing: bool,
) -> Op[MembersResult]:
    resolution = yield from ctx.resolution(app)
    limits = resolution.limits
    require_active(ctx, app, limits)
    override = limits.group_overrides.get(group)
    per_user = {user: limits.for_user(user, "groups_per_user") for user in ids}
    script = scripts.add_members(
        keys,
        group,
        None if override is None else (-1 if override.value is None else override.value),
        resolution.member_types,
        ids,
        [cap(per_user[user]) for user in ids],
        shadow=(ctx.in_shadow("group_members"), ctx.in_shadow("groups_per_user")),
        all_or_nothing=all_or_nothing,
        require_registered=ctx.settings.require_registered,
    )
    status, size, group_type, decided = yield from call(script)
    if status == 10010:
        raise GroupNotFound(app, group)
    group_limit = limits.for_group(group, group_type)
    whole = None
    if status in (10014, -10014):  # the refusal's lift is looked up only when needed
        whole = refusal(
            ctx, limits, 10014, "group_members", "group", group, size, group_limit, group_type
        )
        if status == 10014:
            raise refuse(ctx, whole)
        shadowed(ctx, whole)

    def refused(code: int, user: str, count: int) -> Refusal:
        found = per_user[user]
        return refusal(ctx, limits, code, "groups_per_user", "user", user, count, found)

    if status == 10037:
        raise_first_refusal(
            ctx,
            app,
            ids,
            [d.outcome for d in decided],
            lambda i: refused(decided[i][0], ids[i], decided[i][1]),
        )
    items = []
    for user, (outcome, count) in zip(ids, decided, strict=True):
        verdict, why = judge(
            ctx, "groups_per_user", outcome, partial(refused, user=user, count=count)
        )
        items.append(Item(user, verdict, why))
    return MembersResult(app, tuple(items), group=group, size=size, shadowed=whole)


def remove_members(
    ctx: Context, app: str, group: str, users: Iterable[str] | str
) -> Op[BatchResult]:
    """Remove users from a group, releasing their groups_per_user count."""
    keys = ctx.keys(app)
    group = ctx.ids.group(group)
    ids = ctx.ids.users(users, "users")
    decided = _remove_members(app, keys, group, ids)
    return guarded(ctx, decided, lambda: all_absent(app, ids), "remove_members")


def _remove_members(app: str, keys: AppKeys, group: str, ids: tuple[str, ...]) -> Op[BatchResult]:
    found, removed = yield from call(scripts.remove_members(keys, group, ids))
    if not found:
        raise GroupNotFound(app, group)
    items = tuple(
        Item(user, Outcome.REMOVED if done else Outcome.ABSENT)
        for user, done in zip(ids, removed, strict=True)
    )
    return BatchResult(app, items)


def destroy_group(ctx: Context, app: str, group: str) -> Op[GroupDestroyed]:
    """Delete a group, releasing every member's count and its AV chat room slot."""
    keys = ctx.keys(app)
    group = ctx.ids.group(group)
    degraded = GroupDestroyed(app, group, False, 0, degraded=True)
    return guarded(ctx, _destroy(ctx, app, keys, group), lambda: degraded, "destroy_group")


def _destroy(ctx: Context, app: str, keys: AppKeys, group: str) -> Op[GroupDestroyed]:
    released = yield from call(scripts.destroy_group(keys, group, ctx.metering(keys)))
    return GroupDestroyed(app, group, released >= 0, max(released, 0))
