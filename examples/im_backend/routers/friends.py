"""``sns``: adding friends (per peer: added, already there, or refused by either side's
``friends`` limit) and deleting them, both ways or from the requester's list only."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter

from examples.im_backend import shapes
from examples.im_backend.dependencies import AppId, Db, Limits, one_app_at_a_time
from examples.im_backend.routers.common import (
    checked_users,
    missing,
    unique,
    unknown_accounts,
    write_or_release,
)
from limiter import FriendItem, Item, Outcome

router = APIRouter(prefix="/sns")


@router.post(
    "/friend_add",
    response_model=shapes.FriendAnswer,
    summary="Add friends; per peer 0, 30010 (your list is full), 30014 (theirs is)",
)
@one_app_at_a_time
async def friend_add(body: shapes.FriendAdd, app: AppId, limits: Limits, db: Db) -> dict[str, Any]:
    user = body.From_Account
    unknown = unknown_accounts(db, app, [user], "sns")
    if unknown:
        return unknown
    peers = unique(item.To_Account for item in body.AddFriendItem)
    invalid = {peer: "cannot add yourself" for peer in peers if peer == user}
    invalid |= {peer: "the account was not imported" for peer in missing(db, app, peers)}
    valid = [peer for peer in peers if peer not in invalid]
    both_ways = body.AddType == "Add_Type_Both"
    outcomes: dict[str, tuple[int, str]] = {
        peer: (shapes.INVALID["sns"], info) for peer, info in invalid.items()
    }
    if valid:
        result = await limits.add_friends(user, valid, both_ways)
        entries = []
        for item in result.items:
            if item.outcome is Outcome.REFUSED:
                continue
            if isinstance(item, FriendItem) and item.outcome is Outcome.ADDED:
                mine, theirs = item.requester_side, item.peer_side
            else:
                # Already there, or degraded (store down, policy open): what was asked
                # for. The limiter has it (or could not say), so SQLite must too; this
                # repairs a removal that reached SQLite only.
                mine, theirs = True, both_ways
            if mine:
                entries.append((user, item.id))
            if theirs:
                entries.append((item.id, user))
        await write_or_release(
            limits, result, lambda: db.add_friend_entries(app, entries), requester=user
        )
        outcomes |= {item.id: _friend_outcome(item) for item in result.items}
    return _friend_answer(peers, outcomes)


@router.post(
    "/friend_delete",
    response_model=shapes.FriendAnswer,
    summary="Delete friends, both ways (default) or from the requester's list only",
)
@one_app_at_a_time
async def friend_delete(
    body: shapes.FriendDelete, limits: Limits, app: AppId, db: Db
) -> dict[str, Any]:
    user = body.From_Account
    peers = checked_users(limits, body.To_Account, "To_Account")
    both_ways = body.DeleteType == "Delete_Type_Both"
    entries = [(user, peer) for peer in peers]
    if both_ways:
        entries += [(peer, user) for peer in peers]
    db.delete_friend_entries(app, entries)
    result = await limits.remove_friends(user, peers, both_ways)
    not_friends = (shapes.INVALID["sns"], "not a friend: nothing changed")
    outcomes = {
        item.id: (0, "") if item.outcome is Outcome.REMOVED or result.degraded else not_friends
        for item in result.items
    }
    return _friend_answer(peers, outcomes)


def _friend_answer(peers: Iterable[str], outcomes: dict[str, tuple[int, str]]) -> dict[str, Any]:
    """A friend command's answer: per peer its (code, message), and the peers that failed."""
    items = [
        {"To_Account": peer, "ResultCode": outcomes[peer][0], "ResultInfo": outcomes[peer][1]}
        for peer in peers
    ]
    failed = [item["To_Account"] for item in items if item["ResultCode"] != 0]
    return shapes.ok(ResultItem=items, Fail_Account=failed)


def _friend_outcome(item: Item) -> tuple[int, str]:
    if item.outcome is Outcome.ADDED:
        return 0, ""
    if item.outcome is Outcome.ALREADY or item.refusal is None:
        return shapes.INVALID["sns"], "already a friend: nothing changed"
    return item.refusal.code, item.refusal.describe()
