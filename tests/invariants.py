"""The invariants of one app's stored relations, read from Redis itself (issue 6).

A race cannot predict which additions win, but whatever state it leaves must be one the engine
could legally reach: every relation stored on both sides, relations only between registered
accounts and existing groups, no count above its limit (unless a lowered limit left it there),
and the engine's own counts equal to the sizes of the raw sets. :func:`check_app` reads the raw
keys (layout in :mod:`limiter.store.keys`) and lists every breach, so a test can assert the list is
empty and a planted breach can prove the checker sees it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import cast

import redis

from limiter import Limiter
from limiter.catalog import Catalog
from limiter.limits import EffectiveLimits, Limit
from limiter.store.keys import AppKeys, entity
from tests.conftest import all_keys, keys_of

Pair = tuple[str, str]
# (scope, id, limit) -> the most that entity may hold: what it held when a lowered limit left
# it above (lower limits never evict; the race test records these right after each change).
Grandfathered = Mapping[tuple[str, str, str], int]


@dataclass(frozen=True)
class Violation:
    """One breach: ``rule`` is a short stable name a test can assert on, ``detail`` says where."""

    rule: str
    detail: str


@dataclass(frozen=True)
class Report:
    violations: tuple[Violation, ...]
    checks: int

    def rules(self) -> set[str]:
        return {violation.rule for violation in self.violations}


@dataclass
class _Tally:
    """Counts every condition checked and keeps the ones that failed."""

    checks: int = 0
    violations: list[Violation] = field(default_factory=list)

    def expect(self, holds: bool, rule: str, detail: str) -> None:
        self.checks += 1
        if not holds:
            self.violations.append(Violation(rule, detail))


@dataclass(frozen=True)
class _Stored:
    """The app's relation keys as Python sets, as Redis holds them."""

    users: set[str]
    strays: set[str]
    groups: dict[str, str]
    av_rooms: set[str]
    members: set[Pair]
    joined: set[Pair]
    joined_free: set[Pair]
    friends: set[Pair]
    friended_by: set[Pair]


def generation(client: redis.Redis, keys: AppKeys) -> str:
    """The app's live relation generation."""
    return cast("str | None", client.get(keys.gen)) or "0"


def relation_key(client: redis.Redis, keys: AppKeys, name: str, subject: str) -> str:
    """The live key of one user's or group's relations in namespace ``name`` (e.g. "friends")."""
    return entity(getattr(keys, name), generation(client, keys), subject)


def relation_count(client: redis.Redis, keys: AppKeys, name: str, subject: str) -> int:
    return cast("int", client.hlen(relation_key(client, keys, name, subject)))


def link(client: redis.Redis, keys: AppKeys, name: str, a: str, b: str) -> None:
    """Store b in a's relations of ``name`` directly (to plant a state)."""
    client.hset(relation_key(client, keys, name, a), b, "")


def unlink(client: redis.Redis, keys: AppKeys, name: str, a: str, b: str) -> None:
    client.hdel(relation_key(client, keys, name, a), b)


def stored_pairs(
    client: redis.Redis, keys: AppKeys, name: str, tally: _Tally | None = None
) -> set[Pair]:
    """Every relation (subject, other) of namespace ``name`` in the live generation, read from
    the per-entity keys themselves (found by a scan, not through the app's indexes); a key
    that is not a hash of empty values is a breach (``malformed``), reported to ``tally`` or
    raised."""
    own = tally is None
    tally = _Tally() if tally is None else tally
    prefix = entity(getattr(keys, name), generation(client, keys), "")
    found = set()
    for key in sorted(all_keys(client, prefix + "*")):
        subject = key[len(prefix) :]
        kind = client.type(key)
        tally.expect(kind == "hash", "malformed", f"{key} is a {kind}")
        if kind != "hash":
            continue
        for other, value in cast("dict[str, str]", client.hgetall(key)).items():
            well_formed = value == "" and bool(other)
            tally.expect(well_formed, "malformed", f"{key} holds {other!r}: {value!r}")
            if well_formed:
                found.add((subject, other))
    if own and tally.violations:
        raise AssertionError(tally.violations)
    return found


def _read(client: redis.Redis, keys: AppKeys, tally: _Tally) -> _Stored:
    def pairs(name: str) -> set[Pair]:
        return stored_pairs(client, keys, name, tally)

    return _Stored(
        users={str(user) for user in client.smembers(keys.users)},
        strays={str(user) for user in client.smembers(keys.strays)},
        groups={str(group): str(kind) for group, kind in client.hgetall(keys.groups).items()},
        av_rooms={str(group) for group in client.smembers(keys.av_rooms)},
        members=pairs("members"),
        joined=pairs("joined"),
        joined_free=pairs("joined_free"),
        friends=pairs("friends"),
        friended_by=pairs("friended_by"),
    )


def _check_index(stored: _Stored, tally: _Tally) -> None:
    """Every id that holds relation keys is registered or listed in ``strays`` (so the app's
    keys can be found without a scan), and no registered account is a stray."""
    holders = {a for pairs in (stored.friends, stored.friended_by) for a, _ in pairs}
    holders |= {a for a, _ in stored.joined | stored.joined_free}
    for user in sorted(holders):
        tally.expect(
            user in stored.users or user in stored.strays, "unindexed", f"{user!r} holds relations"
        )
    for user in sorted(stored.strays & stored.users):
        tally.expect(False, "unindexed", f"{user!r} is registered and a stray")


def _counted(catalog: Catalog, group_type: str) -> bool | None:
    """Whether a group of this type counts toward groups_per_user; None for an unknown type."""
    spec = catalog.group_types.get(group_type)
    return None if spec is None else spec.counts_toward_groups_per_user


def _check_memberships(stored: _Stored, catalog: Catalog, tally: _Tally) -> None:
    """members and joined / joined_free mirror each other, on the side the group's type says."""
    for group, user in sorted(stored.members):
        where = f"{user!r} in {group!r}"
        tally.expect(group in stored.groups, "group_missing", f"members: {where}, no such group")
        tally.expect(user in stored.users, "member_not_registered", f"members: {where}")
        group_type = stored.groups.get(group)
        if group_type is not None:
            counted = _counted(catalog, group_type)
            tally.expect(counted is not None, "group_type", f"{group!r} has type {group_type!r}")
            side = stored.joined if counted else stored.joined_free
            tally.expect((user, group) in side, "member_without_join", f"{where} ({group_type})")
    for name, side, counted in (
        ("joined", stored.joined, True),
        ("joined_free", stored.joined_free, False),
    ):
        for user, group in sorted(side):
            group_type = stored.groups.get(group)
            right_side = group_type is None or _counted(catalog, group_type) == counted
            tally.expect(
                (group, user) in stored.members and right_side,
                "join_without_member",
                f"{name} holds {user!r} in {group!r} (type {group_type})",
            )
    av_types = {name for name, spec in catalog.group_types.items() if spec.av_chatroom}
    rooms = {group for group, group_type in stored.groups.items() if group_type in av_types}
    for group in sorted(rooms | stored.av_rooms):
        tally.expect(
            (group in rooms) == (group in stored.av_rooms),
            "av_rooms",
            f"{group!r}: type {stored.groups.get(group)}, in av_rooms: {group in stored.av_rooms}",
        )


def _check_friends(
    stored: _Stored, one_way_pairs: Collection[frozenset[str]], tally: _Tally
) -> None:
    """friended_by mirrors friends exactly; lists hold registered accounts; a relation is
    both-way unless the test named its pair as one a single-way operation touched."""
    reversed_index = {(b, a) for a, b in stored.friended_by}
    for a, b in sorted(stored.friends | reversed_index):
        tally.expect(
            (a, b) in stored.friends and (a, b) in reversed_index,
            "friend_index",
            f"{b!r} in {a!r}'s list: friends {(a, b) in stored.friends}, "
            f"friended_by {(a, b) in reversed_index}",
        )
    for a, b in sorted(stored.friends):
        tally.expect(a != b, "malformed", f"{a!r} is in their own friend list")
        for user in (a, b):
            tally.expect(user in stored.users, "friend_not_registered", f"{a!r} -> {b!r}")
        if frozenset((a, b)) not in one_way_pairs:
            tally.expect((b, a) in stored.friends, "friend_asymmetric", f"{a!r} -> {b!r} only")


def _counts(pairs: set[Pair]) -> Counter[str]:
    """How many relations each subject (the first of a pair) holds."""
    return Counter(a for a, _ in pairs)


def _over(stored: _Stored, app: str, limits: EffectiveLimits) -> dict[tuple[str, str, str], int]:
    """Every (scope, id, limit) whose count is above its effective limit, with the count."""
    found: dict[tuple[str, str, str], int] = {}

    def check(scope: str, subject: str, limit: str, count: int, cap: Limit) -> None:
        if cap.value is not None and count > cap.value:
            found[(scope, subject, limit)] = count

    check("app", app, "users", len(stored.users), limits.app["users"])
    check("app", app, "av_chatrooms", len(stored.av_rooms), limits.app["av_chatrooms"])
    for pairs, limit in ((stored.friends, "friends"), (stored.joined, "groups_per_user")):
        for user, count in _counts(pairs).items():
            check("user", user, limit, count, limits.for_user(user, limit))
    for group, count in _counts(stored.members).items():
        group_type = stored.groups.get(group)
        if group_type is not None and (
            group_type in limits.group_members or group in limits.group_overrides
        ):
            cap = limits.for_group(group, group_type)
            check("group", group, "group_members", count, cap)
    return found


def _check_limits(
    engine: Limiter, app: str, stored: _Stored, grandfathered: Grandfathered, tally: _Tally
) -> None:
    """No count above its limit, except one a lowered limit left there (and no higher than
    it was then); the engine's over-limit report names exactly the entities above."""
    limits = engine.limits(app)
    over = _over(stored, app, limits)
    subjects = [("app", app, "users"), ("app", app, "av_chatrooms")]
    subjects += [("user", u, "friends") for u in _counts(stored.friends)]
    subjects += [("user", u, "groups_per_user") for u in _counts(stored.joined)]
    subjects += [("group", g, "group_members") for g in _counts(stored.members)]
    for subject in subjects:
        count, allowed = over.get(subject), grandfathered.get(subject)
        tally.expect(
            count is None or (allowed is not None and count <= allowed),
            "over_limit",
            f"{subject} holds {count} (left above a lowered limit at: {allowed})",
        )
    reported = {(o.scope, o.id, o.limit): o.current for o in engine.over_limit(app)}
    tally.expect(reported == over, "over_limit_report", f"engine {reported}, sets {over}")


def _check_counters(engine: Limiter, app: str, stored: _Stored, tally: _Tally) -> None:
    """The engine's reported counts equal the sizes of the raw sets."""
    usage = engine.usage(app)
    sizes = (len(stored.users), len(stored.groups), len(stored.av_rooms))
    reported = (usage.users, usage.groups, usage.av_chatrooms)
    tally.expect(reported == sizes, "counter", f"usage {reported}, sets {sizes}")
    friends, joined = _counts(stored.friends), _counts(stored.joined)
    related = {a for a, _ in stored.friends | stored.joined | stored.joined_free}
    for user in sorted(stored.users | related):
        found = engine.user_usage(app, user)
        got = (found.registered, found.friends, found.groups)
        want = (user in stored.users, friends[user], joined[user])
        tally.expect(got == want, "counter", f"user_usage({user!r}) {got}, sets {want}")
    members = _counts(stored.members)
    for group, group_type in sorted(stored.groups.items()):
        group_usage = engine.group_usage(app, group)
        got_group = None if group_usage is None else (group_usage.type, group_usage.members)
        want_group = (group_type, members[group])
        tally.expect(
            got_group == want_group, "counter", f"group_usage({group!r}) {got_group}, {want_group}"
        )


def check_app(
    engine: Limiter,
    client: redis.Redis,
    app: str,
    *,
    one_way_pairs: Collection[frozenset[str]] = frozenset(),
    grandfathered: Grandfathered | None = None,
) -> Report:
    """Check every invariant of ``app`` from its raw keys; run it while nothing else writes.

    ``client`` must decode responses. ``one_way_pairs``: the pairs a single-way friend add or
    removal touched (only they may be one-sided). ``grandfathered``: entities a lowered limit
    left above it, with the count they held then.
    """
    tally = _Tally()
    stored = _read(client, keys_of(engine, app), tally)
    _check_index(stored, tally)
    _check_memberships(stored, engine.catalog, tally)
    _check_friends(stored, one_way_pairs, tally)
    _check_limits(engine, app, stored, grandfathered or {}, tally)
    _check_counters(engine, app, stored, tally)
    return Report(tuple(tally.violations), tally.checks)
