"""One builder and one decoder per Lua script of ``lua/``: the builder takes the script's
inputs and lays out KEYS and ARGV in the order of the script's header; the decoder turns its
reply into a typed value. Nothing else knows a script's argument positions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from limiter.store.keys import AppKeys
from limiter.store.requests import Arg, ScriptCall, pairs


def flags(*values: bool) -> str:
    """A script's ARGV[1]: one "0"/"1" character per yes/no input (``lib.lua``'s ``flag``)."""
    return "".join(["1" if value else "0" for value in values])


def _with_limits(ids: Sequence[str], limits: Sequence[int]) -> list[Arg]:
    """Pairs ``id, its limit`` as the scripts take them after their fixed arguments."""
    args: list[Arg] = []
    for subject, limit in zip(ids, limits, strict=True):
        args += (subject, limit)
    return args


class Decided(NamedTuple):
    """One item's outcome (1 added, 2 already, a refusal's code, its negation when shadow mode
    let it through, 0 not attempted) and the count it speaks of."""

    outcome: int
    current: int


def _decided(reply: Sequence[Any]) -> tuple[Decided, ...]:
    return tuple(Decided(outcome, current) for outcome, current in pairs(reply, 2))


# -- accounts ---------------------------------------------------------------------------------


def register_users(
    keys: AppKeys, limit: int, users: Sequence[str], *, shadow: bool, all_or_nothing: bool
) -> ScriptCall[tuple[Decided, ...]]:
    args: tuple[Arg, ...] = (flags(shadow, all_or_nothing), limit, *users)
    return ScriptCall("register_users", (keys.users,), args, _decided)


class Deleted(NamedTuple):
    registered: bool
    friendships: int
    memberships: int


def delete_users(keys: AppKeys, users: Sequence[str]) -> ScriptCall[tuple[Deleted, ...]]:
    script_keys = (
        keys.users,
        keys.friends,
        keys.friended_by,
        keys.members,
        keys.joined,
        keys.joined_free,
    )
    return ScriptCall("delete_users", script_keys, tuple(users), _deleted)


def _deleted(reply: Sequence[Any]) -> tuple[Deleted, ...]:
    return tuple(Deleted(bool(r), f, m) for r, f, m in pairs(reply, 3))


def unregister_users(keys: AppKeys, users: Sequence[str]) -> ScriptCall[int]:
    return ScriptCall("unregister_users", (keys.users,), tuple(users))


# -- friends ----------------------------------------------------------------------------------


class FriendDecided(NamedTuple):
    """A peer's outcome, the sides written (bit 1 the requester's, bit 2 the peer's), the list
    size the outcome speaks of, and the peer's size when its list was over a shadow limit too
    (else -1)."""

    outcome: int
    sides: int
    current: int
    peer_count: int


def add_friends(
    keys: AppKeys,
    user: str,
    limit: int,
    peers: Sequence[str],
    peer_limits: Sequence[int],
    *,
    both_ways: bool,
    shadow: bool,
    all_or_nothing: bool,
) -> ScriptCall[tuple[FriendDecided, ...]]:
    args = (
        flags(both_ways, shadow, all_or_nothing),
        user,
        limit,
        *_with_limits(peers, peer_limits),
    )
    return ScriptCall("add_friends", (keys.friends, keys.friended_by), args, _friend_decided)


def _friend_decided(reply: Sequence[Any]) -> tuple[FriendDecided, ...]:
    return tuple(FriendDecided(*record) for record in pairs(reply, 4))


def remove_friend_edges(
    keys: AppKeys, edges: Sequence[tuple[str, str]]
) -> ScriptCall[tuple[bool, ...]]:
    args = tuple(part for edge in edges for part in edge)
    return ScriptCall("remove_friend_edges", (keys.friends, keys.friended_by), args, _booleans)


def _booleans(reply: Sequence[Any]) -> tuple[bool, ...]:
    return tuple(bool(done) for done in reply)


# -- groups -----------------------------------------------------------------------------------


class Refused(NamedTuple):
    """A refusal a script reports: its code, whom it is about, the count at the decision."""

    code: int
    subject: str
    current: int


class Created(NamedTuple):
    """``create_group``'s answer: status 0 created (count = members), 10021 the id is taken,
    else the first refusal's code, subject and count; ``others``: further refusals (or, when
    created, the refusals shadow mode let through)."""

    status: int
    subject: str
    current: int
    others: tuple[Refused, ...]


def _group_change_keys(keys: AppKeys, meter: str) -> tuple[str, ...]:
    """KEYS of a script that creates or destroys a group (the month's peak of groups lives in
    ``meter``)."""
    return (keys.groups, keys.members, keys.joined, keys.joined_free, keys.av_rooms, meter)


class Metering(NamedTuple):
    """Where a change of the live group count is metered: the month's hash, today, the month's
    first day, and the hash's retention in seconds."""

    meter: str
    today: str
    first_day: str
    retention: int


def create_group(
    keys: AppKeys,
    group: str,
    group_type: str,
    member_limit: int,
    rooms_limit: int,
    metering: Metering,
    people: Sequence[str],
    people_limits: Sequence[int],
    *,
    counted: bool,
    av_chatroom: bool,
    shadow: tuple[bool, bool, bool],
) -> ScriptCall[Created]:
    """``shadow``: whether group_members, av_chatrooms and groups_per_user are in shadow mode;
    ``people``: the owner first, then the members."""
    args = (
        flags(counted, av_chatroom, *shadow),
        group,
        group_type,
        member_limit,
        rooms_limit,
        metering.today,
        metering.first_day,
        metering.retention,
        *_with_limits(people, people_limits),
    )
    script_keys = _group_change_keys(keys, metering.meter)
    return ScriptCall("create_group", script_keys, args, _created)


def _created(reply: Sequence[Any]) -> Created:
    others = tuple(Refused(*triple) for triple in pairs(reply[3:], 3))
    return Created(reply[0], reply[1], reply[2], others)


class MembersAdded(NamedTuple):
    """``add_members``'s answer: status (0 done, 10010 no such group, 10014 / -10014 the
    group is full / over a shadow limit, 10037 all or nothing refused), the group's size, its
    type, and each user's outcome."""

    status: int
    size: int
    group_type: str
    decided: tuple[Decided, ...]


def add_members(
    keys: AppKeys,
    group: str,
    group_limit: int | None,
    group_types: str,
    users: Sequence[str],
    user_limits: Sequence[int],
    *,
    shadow: tuple[bool, bool],
    all_or_nothing: bool,
) -> ScriptCall[MembersAdded]:
    """``group_limit``: the group's own limit when an override sets one (-1 unlimited), else
    None (its type's); ``group_types``: :func:`group_types`; ``shadow``: whether
    group_members and groups_per_user are in shadow mode."""
    args = (
        flags(*shadow, all_or_nothing),
        group,
        "" if group_limit is None else group_limit,
        group_types,
        *_with_limits(users, user_limits),
    )
    script_keys = (keys.groups, keys.members, keys.joined, keys.joined_free)
    return ScriptCall("add_members", script_keys, args, _members_added)


def group_types(types: Sequence[tuple[str, int, bool]]) -> str:
    """``add_members``' one argument describing every group type: (type, its group_members
    limit, whether it counts toward groups_per_user) as "\\0type\\0limit\\0counted" each, then
    "\\0" (one argument instead of three per type: each argument costs both ends)."""
    parts = [f"\0{name}\0{limit}\0{int(counted)}" for name, limit, counted in types]
    return "".join(parts) + "\0"


def _members_added(reply: Sequence[Any]) -> MembersAdded:
    return MembersAdded(reply[0], reply[1], reply[2], _decided(reply[3:]))


class MembersRemoved(NamedTuple):
    found: bool  # the group exists
    removed: tuple[bool, ...]


def remove_members(keys: AppKeys, group: str, users: Sequence[str]) -> ScriptCall[MembersRemoved]:
    script_keys = (keys.groups, keys.members, keys.joined, keys.joined_free)
    return ScriptCall("remove_members", script_keys, (group, *users), _members_removed)


def _members_removed(reply: Sequence[Any]) -> MembersRemoved:
    return MembersRemoved(bool(reply[0]), _booleans(reply[1:]))


def destroy_group(keys: AppKeys, group: str, metering: Metering) -> ScriptCall[int]:
    """Replies the members released, or -1 when there was no such group."""
    args = (group, metering.today, metering.first_day, metering.retention)
    return ScriptCall("destroy_group", _group_change_keys(keys, metering.meter), args)


# -- plans ------------------------------------------------------------------------------------


def plan_write(
    keys: AppKeys,
    field: str,
    value: str | None,
    expected: str | None,
    audit_opening: str,
    audit_kept: int,
    ledger_entry: str | None,
    today: str,
) -> ScriptCall[bool]:
    """Set (``value``) or delete (None) one plan field, only if it holds ``expected`` ("" =
    absent) when given, with its audit entry (and ledger entry). True when written."""
    compare = ("any", "") if expected is None else ("cas", expected)
    written = ("del", "") if value is None else ("set", value)
    ledger = "" if ledger_entry is None else ledger_entry
    args = (field, *compare, *written, audit_opening, audit_kept, ledger, today)
    return ScriptCall("plan_write", (keys.plan, keys.audit, keys.ledger), args, bool)


# -- metering ---------------------------------------------------------------------------------


class LoginCounted(NamedTuple):
    outcome: int  # 1 the day's first login, 0 seen already, -1 the day had closed
    dau: int  # the day's distinct users


def record_login(
    keys: AppKeys,
    user: str,
    day: str,
    dau_key: str,
    meter: str,
    closes_in: int,
    retention: int,
) -> ScriptCall[LoginCounted]:
    args = (user, day, closes_in, retention)
    return ScriptCall("record_login", (dau_key, meter), args, _login_counted)


def _login_counted(reply: Sequence[Any]) -> LoginCounted:
    return LoginCounted(reply[0], reply[1])


def record_bandwidth(meter: str, day: str, mbps: str, retention: int) -> ScriptCall[str]:
    """Replies the day's peak so far (a decimal string)."""
    return ScriptCall("record_bandwidth", (meter,), (day, mbps, retention), _peak)


def _peak(reply: Sequence[Any]) -> str:
    return str(reply[1])


# -- reconcile --------------------------------------------------------------------------------


class ChunkDiff(NamedTuple):
    """One compared chunk: whether more follows, its upper bound, entries added and removed,
    and the count change of each subject it changes."""

    more: bool
    upper: str
    added: int
    removed: int
    changes: tuple[tuple[str, int], ...]


def diff_chunk(live: str, rebuilt: str, low: str, size: int) -> ScriptCall[ChunkDiff]:
    """``low``: "-" for the start, else "(" + the previous chunk's upper bound."""
    return ScriptCall("diff_chunk", (live, rebuilt), (low, size), _chunk_diff)


def _chunk_diff(reply: Sequence[Any]) -> ChunkDiff:
    more, upper, added, removed, *changes = reply
    pairs_ = tuple(zip(changes[::2], changes[1::2], strict=True))
    return ChunkDiff(bool(more), upper, added, removed, pairs_)


def rebuild_swap(
    live: AppKeys,
    rebuilt: AppKeys,
    sizes: Sequence[int],
    audit_entry: str,
    audit_kept: int,
    metering: Metering,
) -> ScriptCall[int]:
    """Switch every relation key to its rebuilt one if each holds ``sizes`` (in
    :meth:`AppKeys.relations` order). Replies the live groups after, or -1 (nothing done)."""
    pairs_ = [
        key for pair in zip(live.relations(), rebuilt.relations(), strict=True) for key in pair
    ]
    script_keys = (live.groups, live.audit, metering.meter, *pairs_)
    args = (audit_entry, audit_kept, metering.today, metering.first_day, metering.retention)
    return ScriptCall("rebuild_swap", script_keys, (*args, *sizes))
