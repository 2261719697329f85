"""Friendships: adding peers to a user's list against both sides' ``friends`` limits (30010,
30014), single-way or both ways, and removing them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial

from limiter.errors import InvalidRequest, Refusal
from limiter.limits import EffectiveLimits, Limit
from limiter.ops.context import Context, Op, cap
from limiter.ops.decisions import (
    all_absent,
    all_added,
    guarded,
    judge,
    not_registered,
    raise_first_refusal,
    refusal,
    require_active,
    shadowed,
    switch,
)
from limiter.results import BatchResult, FriendItem, Item, Outcome
from limiter.store import scripts
from limiter.store.requests import call

# A friend-list entry: (whose list, who is in it).
Edge = tuple[str, str]


def add_friends(
    ctx: Context,
    app: str,
    user: str,
    peers: Iterable[str] | str,
    both_ways: bool | str = True,
    *,
    all_or_nothing: bool = False,
) -> Op[BatchResult]:
    """Add peers to ``user``'s list (and ``user`` to theirs when ``both_ways``).

    Per peer: added, already, refused 30010 (the user's list is full) or 30014 (the peer's,
    both-way only), or not_registered (accounts first: the peer is not an account). A
    both-way add over an existing single-way relation completes it. ``all_or_nothing``: if
    any peer would be refused, add none and raise :class:`Refused` (:class:`NotRegistered`
    for peers that are not accounts). A requester that is not an account: NotRegistered.
    """
    ctx.keys(app)
    user = ctx.ids.user(user)
    ids = ctx.ids.users(peers, "peers")
    both = switch(both_ways, "both_ways")
    if user in ids:
        raise InvalidRequest("peers", f"a user cannot befriend themselves: {user!r}")
    decided = _add(ctx, app, user, ids, both, all_or_nothing)
    return guarded(ctx, decided, lambda: all_added(app, ids), "add_friends")


def _add(
    ctx: Context, app: str, user: str, ids: tuple[str, ...], both_ways: bool, all_or_nothing: bool
) -> Op[BatchResult]:
    keys = ctx.keys(app)
    limits = yield from ctx.limits(app)
    require_active(ctx, app, limits)
    mine = limits.for_user(user, "friends")
    theirs = {peer: limits.for_user(peer, "friends") for peer in ids}
    script = scripts.add_friends(
        keys,
        user,
        cap(mine),
        ids,
        [cap(theirs[peer]) for peer in ids],
        both_ways=both_ways,
        shadow=ctx.in_shadow("friends"),
        all_or_nothing=all_or_nothing,
        require_registered=ctx.settings.require_registered,
    )
    reply = yield from call(script)
    if reply is None:
        raise not_registered(ctx, app, (user,))
    refused = partial(_refusal, ctx, limits, app, user, mine, theirs)
    if all_or_nothing:
        raise_first_refusal(
            ctx,
            app,
            ids,
            [d.outcome for d in reply],
            lambda i: refused(reply[i][0], ids[i], reply[i][2]),
        )
    items = []
    for peer, (outcome, sides, count, peer_count) in zip(ids, reply, strict=True):
        verdict, why = judge(ctx, "friends", outcome, partial(refused, peer=peer, count=count))
        if peer_count >= 0:  # the peer's list was over its shadow limit as well
            shadowed(ctx, refused(30014, peer, peer_count))
        items.append(FriendItem(peer, verdict, why, bool(sides & 1), bool(sides & 2)))
    return BatchResult(app, tuple(items))


def _refusal(
    ctx: Context,
    limits: EffectiveLimits,
    app: str,
    user: str,
    mine: Limit,
    theirs: dict[str, Limit],
    code: int,
    peer: str,
    count: int,
) -> Refusal:
    """30014 is the peer's full list, anything else the user's own."""
    if code == 30014:
        return refusal(ctx, limits, code, "friends", "user", peer, count, theirs[peer])
    return refusal(ctx, limits, code, "friends", "user", user, count, mine)


def remove_friends(
    ctx: Context, app: str, user: str, peers: Iterable[str] | str, both_ways: bool | str = True
) -> Op[BatchResult]:
    """Remove peers from ``user``'s list (and ``user`` from theirs when ``both_ways``)."""
    ctx.keys(app)
    user = ctx.ids.user(user)
    ids = ctx.ids.users(peers, "peers")
    both = switch(both_ways, "both_ways")
    edges = [(user, peer) for peer in ids]
    if both:
        edges += [(peer, user) for peer in ids]
    decided = _remove(ctx, app, user, ids, both, edges)
    return guarded(ctx, decided, lambda: all_absent(app, ids), "remove_friends")


def _remove(
    ctx: Context, app: str, user: str, ids: tuple[str, ...], both_ways: bool, edges: list[Edge]
) -> Op[BatchResult]:
    removed = yield from remove_edges(ctx, app, edges)
    items = []
    for peer in ids:
        gone = removed[(user, peer)] or (both_ways and removed[(peer, user)])
        items.append(Item(peer, Outcome.REMOVED if gone else Outcome.ABSENT))
    return BatchResult(app, tuple(items))


def remove_edges(ctx: Context, app: str, edges: Sequence[Edge]) -> Op[dict[Edge, bool]]:
    """Remove friend-list entries; which of them were there."""
    reply = yield from call(scripts.remove_friend_edges(ctx.keys(app), edges))
    return dict(zip(edges, reply, strict=True))
