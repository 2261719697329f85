"""One builder and one decoder per Lua script of ``lua/``: the builder takes the script's
inputs and lays out KEYS and ARGV in the order of the script's header; the decoder turns its
reply into a typed value. Nothing else knows a script's argument positions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from limiter.results import GroupUsage, UserUsage
from limiter.store.keys import RETIRED, AppKeys
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
    return ScriptCall("register_users", (keys.users, keys.strays), args, _decided)


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
        keys.strays,
        keys.gen,
    )
    return ScriptCall("delete_users", script_keys, tuple(users), _deleted)


def _deleted(reply: Sequence[Any]) -> tuple[Deleted, ...]:
    return tuple(Deleted(bool(r), f, m) for r, f, m in pairs(reply, 3))


def unregister_users(keys: AppKeys, users: Sequence[str]) -> ScriptCall[int]:
    sides = (keys.friends, keys.friended_by, keys.joined, keys.joined_free)
    return ScriptCall("unregister_users", (keys.users, keys.strays, keys.gen, *sides), tuple(users))


# -- usage ------------------------------------------------------------------------------------


def user_counts(keys: AppKeys, users: Sequence[str]) -> ScriptCall[tuple[UserUsage, ...]]:
    """Each user's registration, friends and counted groups."""
    script_keys = (keys.gen, keys.users, keys.friends, keys.joined)

    def decode(reply: Sequence[Any]) -> tuple[UserUsage, ...]:
        return tuple(
            UserUsage(user, bool(registered), friends, groups)
            for user, (registered, friends, groups) in zip(users, pairs(reply, 3), strict=True)
        )

    return ScriptCall("user_counts", script_keys, tuple(users), decode)


def group_counts(keys: AppKeys, groups: Sequence[str]) -> ScriptCall[tuple[GroupUsage | None, ...]]:
    """Each group's type and members (None: no such group)."""

    def decode(reply: Sequence[Any]) -> tuple[GroupUsage | None, ...]:
        return tuple(
            GroupUsage(group, group_type, members) if group_type else None
            for group, (group_type, members) in zip(groups, pairs(reply, 2), strict=True)
        )

    script_keys = (keys.gen, keys.groups, keys.members)
    return ScriptCall("group_counts", script_keys, tuple(groups), decode)


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
    require_registered: bool,
) -> ScriptCall[tuple[FriendDecided, ...] | None]:
    """Decodes to each peer's outcome, or None: the requester is not a registered account
    (``require_registered``) and nothing was decided."""
    args = (
        flags(both_ways, shadow, all_or_nothing, require_registered),
        user,
        limit,
        *_with_limits(peers, peer_limits),
    )
    script_keys = (keys.friends, keys.friended_by, keys.users, keys.strays, keys.gen)
    return ScriptCall("add_friends", script_keys, args, _friend_decided)


def _friend_decided(reply: Sequence[Any]) -> tuple[FriendDecided, ...] | None:
    if not reply[0]:
        return None
    return tuple(FriendDecided(*record) for record in pairs(reply[1:], 4))


def remove_friend_edges(
    keys: AppKeys, edges: Sequence[tuple[str, str]]
) -> ScriptCall[tuple[bool, ...]]:
    args = tuple(part for edge in edges for part in edge)
    script_keys = (keys.friends, keys.friended_by, keys.gen)
    return ScriptCall("remove_friend_edges", script_keys, args, _booleans)


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
    memberships = (keys.groups, keys.members, keys.joined, keys.joined_free)
    return (*memberships, keys.av_rooms, meter, keys.users, keys.strays, keys.gen)


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
    require_registered: bool,
) -> ScriptCall[Created]:
    """``shadow``: whether group_members, av_chatrooms and groups_per_user are in shadow mode;
    ``people``: the owner first, then the members."""
    args = (
        flags(counted, av_chatroom, *shadow, require_registered),
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
    require_registered: bool,
) -> ScriptCall[MembersAdded]:
    """``group_limit``: the group's own limit when an override sets one (-1 unlimited), else
    None (its type's); ``group_types``: :func:`group_types`; ``shadow``: whether
    group_members and groups_per_user are in shadow mode."""
    args = (
        flags(*shadow, all_or_nothing, require_registered),
        group,
        "" if group_limit is None else group_limit,
        group_types,
        *_with_limits(users, user_limits),
    )
    memberships = (keys.groups, keys.members, keys.joined, keys.joined_free)
    script_keys = (*memberships, keys.users, keys.strays, keys.gen)
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
    script_keys = (keys.groups, keys.members, keys.joined, keys.joined_free, keys.gen)
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
    outcome: int  # 1 the day's first login, 0 seen already, -1 the day had closed, -2 no account
    dau: int  # the day's distinct users


def record_login(
    keys: AppKeys,
    user: str,
    day: str,
    dau_key: str,
    meter: str,
    closes_in: int,
    retention: int,
    *,
    require_registered: bool,
) -> ScriptCall[LoginCounted]:
    args = (user, day, closes_in, retention, flags(require_registered))
    return ScriptCall("record_login", (dau_key, meter, keys.users), args, _login_counted)


def _login_counted(reply: Sequence[Any]) -> LoginCounted:
    return LoginCounted(reply[0], reply[1])


def record_bandwidth(meter: str, day: str, mbps: str, retention: int) -> ScriptCall[str]:
    """Replies the day's peak so far (a decimal string)."""
    return ScriptCall("record_bandwidth", (meter,), (day, mbps, retention), _peak)


def _peak(reply: Sequence[Any]) -> str:
    return str(reply[1])


# -- migration ------------------------------------------------------------------------------


class ChunkMoved(NamedTuple):
    moved: int  # entries moved by this call
    left: int  # entries of the old sorted set still to move (0: done)


def migrate_chunk(keys: AppKeys, namespace: str, count: int) -> ScriptCall[ChunkMoved]:
    """Move up to ``count`` entries of the old layout's relation ``namespace`` (a name of
    :data:`limiter.store.keys.NAMESPACES`) into the per-entity keys."""
    users = namespace != "members"
    script_keys = (getattr(keys, namespace), keys.users, keys.strays, keys.gen)
    return ScriptCall("migrate_chunk", script_keys, (flags(users), count), lambda r: ChunkMoved(*r))


# -- reconcile --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """A page of ids that a script reads itself: ``index`` (a set of ids, or a hash whose
    fields are the ids: ``hashed``) from ``cursor``, about ``size`` of them."""

    index: str
    hashed: bool
    cursor: int
    size: int

    def args(self) -> tuple[int, int]:
        return self.cursor, self.size


class EntityDiff(NamedTuple):
    """One compared page: per namespace compared (entries before, after, added, removed), and
    each (namespace index, id, change, count after) whose count changes."""

    totals: tuple[tuple[int, int, int, int], ...]
    changes: tuple[tuple[int, str, int, int], ...]


def diff_entities(
    live: AppKeys,
    rebuilt: AppKeys,
    page: Page,
    namespaces: Sequence[tuple[str, bool]],
    prefix: str,
) -> ScriptCall[tuple[int, EntityDiff]]:
    """Compare the relations in ``namespaces`` (each with whether its contents are compared,
    or only its counts) of one page of an index's ids (ids already compared are skipped: the
    rebuild's ``seen``, under ``prefix``). Replies the next cursor (0: done) and the page's
    comparison."""
    compared = sum(contents for _, contents in namespaces)

    def decode(reply: Sequence[Any]) -> tuple[int, EntityDiff]:
        totals = tuple(tuple(t) for t in pairs(reply[1 : 1 + 4 * compared], 4))
        changes = tuple(tuple(c) for c in pairs(reply[1 + 4 * compared :], 4))
        return int(reply[0]), EntityDiff(totals, changes)

    names = (name for name, _ in namespaces)
    script_keys = (live.gen, rebuilt.gen, rebuilt.seen, page.index, *names)
    args = (flags(page.hashed, *(contents for _, contents in namespaces)), prefix, *page.args())
    return ScriptCall("diff_entities", script_keys, args, decode)


def drop_entities(page: Page, namespaces: Sequence[str], generation: str) -> ScriptCall[int]:
    """Delete the relation keys in ``namespaces`` of ``generation`` of one page of an index's
    ids. Replies the next cursor (0: done)."""
    script_keys = (page.index, *namespaces)
    args = (flags(page.hashed), generation, *page.args())
    return ScriptCall("drop_entities", script_keys, args, int)


class Swap(NamedTuple):
    """What a reconcile switches: the generation compared with and the new one, and what the
    rebuild's users, groups and AV rooms must hold."""

    live_generation: str
    generation: str
    sizes: tuple[int, int, int]


def load_relations(
    keys: AppKeys, generation: str, entries: Sequence[tuple[int, str, Sequence[str]]]
) -> ScriptCall[int]:
    """Write relations into ``generation``: per entry, the namespace's index in NAMESPACES,
    the user or group, the other ends. Replies the fields added. Reconcile loads send it
    inside their pipelines (:func:`limiter.store.loads.in_pipeline`)."""
    args: list[Arg] = [generation]
    for n, subject, others in entries:
        args += (n + 1, subject, len(others), *others)
    return ScriptCall("load_relations", keys.namespaces(), tuple(args))


def rebuild_swap(
    live: AppKeys,
    rebuilt: AppKeys,
    swap: Swap,
    audit_entry: str,
    audit_kept: int,
    metering: Metering,
) -> ScriptCall[int]:
    """Switch the app to the rebuilt generation. Replies the live groups after, -1 (nothing
    done) when a rebuilt index lost entries, -2 when another reconcile switched first."""
    retired = live.rebuild(swap.live_generation)
    script_keys = (
        live.gen,
        live.rebuilds,
        live.audit,
        metering.meter,
        *live.indexes(),
        *rebuilt.indexes(),
        *retired.indexes(),
        rebuilt.gen,
        rebuilt.seen,
    )
    args = (audit_entry, audit_kept, metering.today, metering.first_day, metering.retention)
    generations = (swap.live_generation, swap.generation)
    return ScriptCall("rebuild_swap", script_keys, (*args, *generations, *swap.sizes, RETIRED))
