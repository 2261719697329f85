"""Accounts: registering them against the app's ``users`` limit (70398) and deleting them with
every relation they hold."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from limiter.errors import Refusal
from limiter.ops.context import Context, Op, cap
from limiter.ops.decisions import (
    all_added,
    guarded,
    judge,
    raise_first_refusal,
    refusal,
    require_active,
)
from limiter.results import BatchResult, DeletedUser, DeleteResult, Item
from limiter.store import scripts
from limiter.store.keys import AppKeys
from limiter.store.requests import call


def register_users(
    ctx: Context, app: str, users: Iterable[str] | str, *, all_or_nothing: bool = False
) -> Op[BatchResult]:
    """Register accounts in order, as many as ``users`` allows; the rest refused (70398).

    ``all_or_nothing``: if any would be refused, register none and raise :class:`Refused`.
    """
    keys = ctx.keys(app)
    ids = ctx.ids.users(users, "users")
    decided = _register(ctx, app, keys, ids, all_or_nothing)
    return guarded(ctx, decided, lambda: all_added(app, ids), "register_users")


def _register(
    ctx: Context, app: str, keys: AppKeys, ids: tuple[str, ...], all_or_nothing: bool
) -> Op[BatchResult]:
    limits = yield from ctx.limits(app)
    require_active(ctx, app, limits)
    found = limits.app["users"]
    shadow = ctx.in_shadow("users")
    script = scripts.register_users(
        keys, cap(found), ids, shadow=shadow, all_or_nothing=all_or_nothing
    )
    reply = yield from call(script)

    def refused(code: int, count: int) -> Refusal:
        return refusal(ctx, limits, code, "users", "app", app, count, found)

    if all_or_nothing:
        outcomes = [d.outcome for d in reply]
        raise_first_refusal(ctx, app, ids, outcomes, lambda i: refused(*reply[i]))
    items = []
    for user, (outcome, count) in zip(ids, reply, strict=True):
        verdict, why = judge(ctx, "users", outcome, partial(refused, count=count))
        items.append(Item(user, verdict, why))
    return BatchResult(app, tuple(items))


def delete_users(ctx: Context, app: str, users: Iterable[str] | str) -> Op[DeleteResult]:
    """Unregister accounts, releasing their friendships (both sides) and memberships."""
    keys = ctx.keys(app)
    ids = ctx.ids.users(users, "users")
    degraded = DeleteResult(app, tuple(DeletedUser(u, False, 0, 0) for u in ids), True)
    return guarded(ctx, _delete(app, keys, ids), lambda: degraded, "delete_users")


def _delete(app: str, keys: AppKeys, ids: tuple[str, ...]) -> Op[DeleteResult]:
    reply = yield from call(scripts.delete_users(keys, ids))
    deleted = (DeletedUser(user, *found) for user, found in zip(ids, reply, strict=True))
    return DeleteResult(app, tuple(deleted))


def unregister(keys: AppKeys, users: tuple[str, ...]) -> Op[None]:
    """Unregister accounts without touching their relations (a released reservation)."""
    yield from call(scripts.unregister_users(keys, users))
