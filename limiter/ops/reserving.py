"""Reservations: an action's whole addition decided and written in one script ahead of the
caller's work, and undone exactly by ``release`` when that work fails."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from limiter.errors import InvalidRequest
from limiter.ops import accounts, friends, groups
from limiter.ops.context import Context, Op
from limiter.reservations import ACTION_PARAMETERS, OPTIONAL_PARAMETERS, Reservation
from limiter.results import BatchResult, FriendItem, GroupCreated, MembersResult, Outcome


def reserve(ctx: Context, app: str, action: str, values: Mapping[str, Any]) -> Op[Reservation]:
    """Make an addition ahead of the caller's work: all of it, or none and :class:`Refused`.

    ``values`` holds the action's parameters (:data:`ACTION_PARAMETERS`). The decision and
    the write are one script (all or nothing), so a refused reservation never held anything.
    """
    if not isinstance(action, str) or action not in ACTION_PARAMETERS:
        known = ", ".join(ACTION_PARAMETERS)
        raise InvalidRequest("action", f"unknown action {action!r} (known: {known})")
    if not isinstance(values, Mapping):
        raise InvalidRequest("values", "must be a mapping of the action's parameters")
    params: dict[str, Any] = {}
    for name in ACTION_PARAMETERS[action]:
        if name in values:
            params[name] = values[name]
        elif name in OPTIONAL_PARAMETERS:
            params[name] = OPTIONAL_PARAMETERS[name]
        else:
            raise InvalidRequest(name, f"{action} needs {name!r}")
    requester = None
    step: Op[BatchResult] | Op[MembersResult] | Op[GroupCreated]
    if action == "register_users":
        step = accounts.register_users(ctx, app, params["users"], all_or_nothing=True)
    elif action == "add_friends":
        requester = ctx.ids.user(params["user"])
        step = friends.add_friends(
            ctx, app, requester, params["peers"], params["both_ways"], all_or_nothing=True
        )
    elif action == "add_members":
        step = groups.add_members(ctx, app, params["group"], params["users"], all_or_nothing=True)
    else:
        step = groups.create_group(
            ctx, app, params["group"], params["type"], params["owner"], params["members"]
        )
    return _reserved(action, app, step, requester)


def _reserved(
    action: str,
    app: str,
    step: Op[BatchResult] | Op[MembersResult] | Op[GroupCreated],
    requester: str | None,
) -> Op[Reservation]:
    result = yield from step
    return Reservation(action, app, result, requester)


def release(ctx: Context, reservation: Reservation) -> Op[None]:
    """Undo exactly what a reservation added (nothing, if it was degraded): accounts are
    unregistered without touching relations, friend-list entries and memberships removed."""
    result, app = reservation.result, reservation.app
    if result.degraded:
        return
    if isinstance(result, GroupCreated):
        yield from groups.destroy_group(ctx, app, result.group)
    elif isinstance(result, MembersResult):
        if result.added:
            yield from groups.remove_members(ctx, app, result.group, result.added)
    elif reservation.requester is not None:
        user = reservation.requester
        edges = []
        for item in result.items:
            if isinstance(item, FriendItem) and item.outcome is Outcome.ADDED:
                if item.requester_side:
                    edges.append((user, item.id))
                if item.peer_side:
                    edges.append((item.id, user))
        if edges:
            yield from friends.remove_edges(ctx, app, edges)
    elif result.added:
        yield from accounts.unregister(ctx.keys(app), result.added)


def release_added(
    ctx: Context, app: str, result: BatchResult | GroupCreated, *, requester: str | None = None
) -> Op[None]:
    """Undo exactly what ``result`` added (``requester``: the user of an ``add_friends``),
    as :func:`release` does for a reservation."""
    return release(ctx, Reservation.of(app, result, requester))
