"""Reconcile on both stores, sync and async: the counters are rebuilt exactly from the source of
truth, the drift report is what a hand count gives, and a bad source changes nothing.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import date
from typing import Any

import pytest

from limiter import (
    AsyncLimiter,
    AsyncStore,
    InvalidRequest,
    LimiterError,
    Outcome,
    Refused,
    Settings,
)
from limiter.catalog import load_catalog
from limiter.metering import Month
from limiter.reconcile import (
    AccountRecord,
    CountChange,
    Drift,
    FriendRecord,
    GroupRecord,
    Orphans,
    Record,
    rebuild,
)
from limiter.reconcile.rebuild import Rebuild
from limiter.results import Usage
from limiter.store import loads
from limiter.store.keys import NAMESPACES
from tests import conftest
from tests.conftest import APP, Backend, all_keys, at, keys_of

# Chunk sizes for these tests (a load of 5000 entries, a comparison of 5000 per set): the
# shipped load is bigger, and the sources here must span several of each. A source that has
# given two loads' worth of records has had its first load written.
TEST_LOAD_ENTRIES = 5000
TEST_COMPARE_CHUNK = 5000


@pytest.fixture(autouse=True)
def chunk_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rebuild, "LOAD_ENTRIES", TEST_LOAD_ENTRIES)
    monkeypatch.setattr(rebuild, "COMPARE_CHUNK", TEST_COMPARE_CHUNK)


NOVEMBER = Month(2026, 11)
CATALOG = load_catalog()


def app_keys(client: Any) -> list[str]:
    return sorted(all_keys(client, f"limiter:{{{APP}}}:*"))


def snapshot(client: Any) -> dict[str, Any]:
    """Every key of the app with its type and whole content."""
    found: dict[str, Any] = {}
    for key in app_keys(client):
        kind = client.type(key)
        if kind == "set":
            value: Any = sorted(client.smembers(key))
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        else:
            value = client.get(key)
        found[key] = (kind, value)
    return found


def relation_keys(client: Any) -> list[str]:
    """The app's per-entity relation keys, of every generation."""
    found = []
    for key in app_keys(client):
        if key.removeprefix(f"limiter:{{{APP}}}:").partition(":")[0] in NAMESPACES:
            found.append(key)
    return found


def rebuild_keys(client: Any) -> list[str]:
    return conftest.rebuild_keys(client, APP)


def assert_counts_match(engine: Any, records: Iterable[Record], sample: Iterable[str] = ()):
    """Every engine count equals what the records say. ``sample``: check only these users
    (a big source); by default every user the records name."""
    users: set[str] = set()
    edges: set[tuple[str, str]] = set()
    types: dict[str, str] = {}
    members: defaultdict[str, set[str]] = defaultdict(set)
    joined: defaultdict[str, set[str]] = defaultdict(set)
    for record in records:
        if isinstance(record, AccountRecord):
            users.add(record.id)
        elif isinstance(record, FriendRecord):
            edges.add((record.user, record.friend))
            if record.both_ways:
                edges.add((record.friend, record.user))
        else:
            group_type = CATALOG.group_type(record.type)
            types[record.id] = group_type
            people = ([] if record.owner is None else [record.owner]) + list(record.members)
            members[record.id].update(people)
            if CATALOG.group_types[group_type].counts_toward_groups_per_user:
                for person in people:
                    joined[person].add(record.id)
    friends = Counter(a for a, _ in edges)
    rooms = sum(CATALOG.group_types[t].av_chatroom for t in types.values())
    assert engine.usage(APP) == Usage(len(users), len(types), rooms)
    everyone = set(sample) or (
        users | {p for e in edges for p in e} | {p for m in members.values() for p in m}
    )
    for person in sorted(everyone):
        usage = engine.user_usage(APP, person)
        assert (usage.registered, usage.friends, usage.groups) == (
            person in users,
            friends[person],
            len(joined[person]),
        ), person
    for group, group_type in types.items():
        usage = engine.group_usage(APP, group)
        assert usage is not None
        assert (usage.type, usage.members) == (group_type, len(members[group])), group


# -- a small app, counted by hand -----------------------------------------------------------------


def build_live_app(engine: Any) -> None:
    """4 accounts, 5 friend-list entries, groups g1 (Public) g2 (Private) av1 (AVChatRoom)."""
    engine.register_users(APP, ["a", "b", "c", "d"])
    engine.add_friends(APP, "a", ["b", "c"])  # a-b, b-a, a-c, c-a
    engine.add_friends(APP, "d", ["a"], both_ways=False)  # d-a
    engine.create_group(APP, "g1", "Public", "a", ["b"])
    engine.create_group(APP, "g2", "Private", "c", ["d"])
    engine.create_group(APP, "av1", "AVChatRoom", "a", ["b", "c"])


SOURCE: list[Record] = [
    AccountRecord("a"),
    AccountRecord("b"),
    AccountRecord("c"),
    AccountRecord("e"),
    FriendRecord("a", "b", both_ways=True),
    FriendRecord("c", "e"),
    GroupRecord("g1", "Public", ("b", "e"), owner="a"),
    GroupRecord("g2", "Meeting", ("c",)),  # was Private: retyped to ChatRoom
    GroupRecord("g3", "Work", (), owner="e"),
    GroupRecord("av2", "AVChatRoom", ("b",)),
]


def test_the_drift_report_matches_a_hand_count(engine):
    build_live_app(engine)
    report = engine.reconcile(APP, SOURCE)
    assert report.app == APP
    # accounts: d went, e came
    assert report.accounts == Drift(before=4, after=4, added=1, removed=1)
    # friend-list entries: a-b and b-a stay; c-e is new; a-c, c-a, d-a go
    assert report.friendships == Drift(before=5, after=3, added=1, removed=3)
    # groups: g1 and g2 stay (g2 retyped), g3 and av2 come, av1 goes
    assert report.groups == Drift(before=3, after=4, added=2, removed=1)
    assert report.groups_retyped == 1
    # memberships: g1:a g1:b g2:c stay; g1:e g3:e av2:b come; g2:d av1:a av1:b av1:c go
    assert report.memberships == Drift(before=7, after=6, added=3, removed=4)
    assert report.av_chatrooms == Drift(before=1, after=1, added=1, removed=1)
    assert report.changes == (
        CountChange("group", "av1", "group_members", 3, 0),
        CountChange("group", "av2", "group_members", 0, 1),
        CountChange("group", "g1", "group_members", 2, 3),
        CountChange("group", "g2", "group_members", 2, 1),
        CountChange("group", "g3", "group_members", 0, 1),
        CountChange("user", "a", "friends", 2, 1),
        CountChange("user", "d", "friends", 1, 0),
        CountChange("user", "d", "groups_per_user", 1, 0),
        CountChange("user", "e", "groups_per_user", 0, 2),
    )  # c keeps 1 friend (a, now e): its count did not change
    assert report.changes_total == 9
    assert report.truncated is False
    assert report.totals() == {
        "accounts": 4,
        "friendships": 3,
        "groups": 4,
        "memberships": 6,
        "av_chatrooms": 1,
    }


def test_every_count_equals_the_source_after_a_reconcile(engine):
    build_live_app(engine)
    engine.reconcile(APP, SOURCE)
    assert_counts_match(engine, SOURCE)
    assert engine.user_usage(APP, "d").registered is False
    assert engine.group_usage(APP, "av1") is None
    assert engine.group_usage(APP, "g2").type == "ChatRoom"
    assert engine.group_usage(APP, "g3").type == "Private"
    # a second reconcile of the same source finds no drift at all
    again = engine.reconcile(APP, SOURCE)
    for drift in (again.accounts, again.friendships, again.groups, again.memberships):
        assert (drift.added, drift.removed) == (0, 0)
    assert (again.groups_retyped, again.changes, again.changes_total) == (0, (), 0)


def test_relations_of_ids_that_are_not_accounts_are_dropped_and_reported(engine, client):
    """Orphans: a friendship or membership naming an id the source does not list as an
    account is not loaded (the account may come later in the stream: it is decided at the
    end), and the report says what was dropped."""
    source: list[Record] = [FriendRecord("a", "ghost", both_ways=True), AccountRecord("a")]
    source += [FriendRecord("a", "b"), GroupRecord("g", "Public", ("ghost", "b", "phantom"), "a")]
    source.append(FriendRecord("ghost", "phantom", both_ways=True))
    source.append(AccountRecord("b"))  # after its relations
    report = engine.reconcile(APP, source)
    assert report.orphans == Orphans(2, 4, 2, ("ghost", "phantom"))  # 4 list entries
    assert report.friendships == Drift(0, 1, 1, 0)  # a -> b
    assert report.memberships == Drift(0, 2, 2, 0)  # a and b in g
    assert engine.user_usage(APP, "a").friends == 1
    assert engine.user_usage(APP, "ghost").friends == 0
    assert engine.group_usage(APP, "g").members == 2
    assert rebuild_keys(client) == []
    assert not [key for key in relation_keys(client) if "ghost" in key or "phantom" in key]
    assert client.smembers(keys_of(engine, APP).strays) == set()


def test_a_group_may_come_in_parts_and_its_owner_is_a_member(engine):
    engine.register_users(APP, ["x"])
    engine.create_group(APP, "stage", "AVChatRoom", "x")
    source = [
        *(AccountRecord(user) for user in ("x", "m1", "m2", "m3", "boss")),
        GroupRecord("big", "Public", ("m1", "m2"), owner="boss"),
        GroupRecord("stage", "AVChatRoom", ("x",)),
        GroupRecord("big", "Public", ("m2", "m3", "boss")),  # the rest; repeats count once
        GroupRecord("big", "Public"),
    ]
    report = engine.reconcile(APP, source)
    assert report.groups == Drift(1, 2, 1, 0)
    assert engine.group_usage(APP, "big").members == 4
    assert engine.user_usage(APP, "boss").groups == 1
    assert_counts_match(engine, source)


def test_decisions_after_a_reconcile_follow_the_new_counts(engine):
    # live: "freed" has a full list of 20, "crowded" a group with 20 members; "new" and
    # "new2" are accounts to befriend (accounts first), before and after the reconcile
    engine.register_users(APP, ["freed", "filled", "new", *[f"p{i}" for i in range(20)]])
    engine.add_friends(APP, "freed", [f"p{i}" for i in range(20)])
    engine.create_group(APP, "crowded", "Public", "freed", [f"p{i}" for i in range(19)])
    engine.create_group(APP, "roomy", "Public", "filled")
    engine.create_group(APP, "stage", "AVChatRoom", "filled")
    assert engine.add_friends(APP, "freed", ["new"]).items[0].outcome is Outcome.REFUSED
    # the source: "freed" has 19 friends, "filled" 20; crowded has 2 members, roomy 20;
    # and the app has 100 accounts (the trial's limit)
    peers = [f"p{i}" for i in range(19)] + [f"q{i}" for i in range(20)]
    accounts = peers + [f"acct{i:03d}" for i in range(57)] + ["freed", "filled", "new", "new2"]
    source: list[Record] = [AccountRecord(a) for a in accounts]
    source += [FriendRecord("freed", f"p{i}", both_ways=True) for i in range(19)]
    source += [FriendRecord("filled", f"q{i}", both_ways=True) for i in range(20)]
    source.append(GroupRecord("crowded", "Public", ("p0",), owner="freed"))
    source.append(GroupRecord("roomy", "Public", tuple(f"q{i}" for i in range(19)), "filled"))
    source.append(GroupRecord("stage", "AVChatRoom", (), owner="filled"))
    engine.reconcile(APP, source)

    assert engine.add_friends(APP, "freed", ["new"]).added == ("new",)
    full = engine.add_friends(APP, "filled", ["new2"]).items[0]
    assert full.outcome is Outcome.REFUSED
    assert (full.refusal.code, full.refusal.current, full.refusal.maximum) == (30010, 20, 20)
    assert engine.add_members(APP, "crowded", ["p5"]).size == 3
    with pytest.raises(Refused) as caught:
        engine.add_members(APP, "roomy", ["q19"])
    assert (caught.value.code, caught.value.current, caught.value.maximum) == (10014, 20, 20)
    refused = engine.register_users(APP, ["one-more"]).items[0]
    assert refused.outcome is Outcome.REFUSED
    assert (refused.refusal.code, refused.refusal.current) == (70398, 100)


# -- a bad source changes nothing --------------------------------------------------------------


BAD_RECORDS = {
    "empty account id": AccountRecord(""),
    "account id too long": AccountRecord("x" * 33),
    "control character in a member": GroupRecord("g", "Public", ("bad\x00id",)),
    "unknown group type": GroupRecord("g", "Castle"),
    "self friendship": FriendRecord("a", "a"),
    "not a record": {"account": "a"},
    "a group given with two types": GroupRecord("twice", "Private", ("late",)),
}
# Big enough that a reconcile loads a first chunk before it reads what follows.
BIG_GROUP = GroupRecord("twice", "Public", tuple(f"m{i:05d}" for i in range(20_000)))


def good_then(client: Any, bad: Any) -> Iterator[Any]:
    """A big valid start (loaded before the rest is read), then ``bad``, then more."""
    yield BIG_GROUP
    for i in range(5000):
        yield AccountRecord(f"s{i:05d}")
    for i in range(2, 400):
        yield FriendRecord("s00001", f"s{i:05d}")
    assert rebuild_keys(client), "the good start should have been loaded by now"
    yield bad
    for i in range(100):
        yield AccountRecord(f"t{i:05d}")


@pytest.mark.parametrize("bad", list(BAD_RECORDS.values()), ids=list(BAD_RECORDS))
def test_a_bad_record_mid_stream_changes_nothing(engine, client, bad):
    build_live_app(engine)
    before = snapshot(client)
    with pytest.raises(InvalidRequest):
        engine.reconcile(APP, good_then(client, bad))
    assert snapshot(client) == before
    assert rebuild_keys(client) == []
    assert [entry.action for entry in engine.audit(APP)] == []


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (GroupRecord("g", "Public", ("ok", "bad\x01"), owner="o"), "groups.members"),
        (GroupRecord("g", "Public", ("ok",), owner="bad\x01"), "groups.owner"),
        (GroupRecord("g", "Public", ("ok", 7)), "groups.members"),  # type: ignore[arg-type]
        (GroupRecord("g", "Public", ("ok", "")), "groups.members"),
        (GroupRecord("g", "Public", ("\u5f20" * 11,)), "groups.members"),  # 11 chars, 33 bytes
    ],
    ids=["control character", "bad owner", "not a string", "empty", "too many bytes"],
)
def test_a_bad_owner_or_member_is_named(engine, record, field):
    """A group's ids are checked together first; the error still names the bad one's field."""
    with pytest.raises(InvalidRequest) as caught:
        engine.reconcile(APP, [record])
    assert caught.value.field == field


def test_ids_of_any_text_within_the_byte_limit_load(engine):
    people = ("\u5f20" * 10, "\u00fc" * 16)
    source: list[Record] = [AccountRecord(p) for p in (*people, "o")]
    source.append(GroupRecord("g", "Public", people, owner="o"))
    engine.reconcile(APP, source)  # 30 and 32 bytes of UTF-8
    assert engine.group_usage(APP, "g").members == 3


def test_a_failing_source_iterator_changes_nothing(engine, client):
    build_live_app(engine)
    before = snapshot(client)

    def source() -> Iterator[Record]:
        yield BIG_GROUP
        for i in range(6000):
            yield AccountRecord(f"s{i:05d}")
        raise InvalidRequest("line 6002", "not JSON")

    with pytest.raises(InvalidRequest):
        engine.reconcile(APP, source())
    assert snapshot(client) == before
    assert rebuild_keys(client) == []


def test_rebuild_keys_lost_mid_stream_are_not_swapped_in(engine, client):
    """The rebuild keys carry a TTL (for rebuilds that never finish), so Redis may drop them
    while a slow source is still being read, or evict them under a ``volatile-*`` policy.
    The reconcile must then fail and leave the live state alone, not swap in a part of the
    source as if it were all of it."""
    build_live_app(engine)
    before = snapshot(client)

    def source() -> Iterator[Record]:
        yield BIG_GROUP
        for i in range(5000):
            yield AccountRecord(f"s{i:05d}")
        loaded = rebuild_keys(client)
        assert loaded, "the start should have been loaded by now"
        client.delete(*loaded)  # the source stalled past the TTL: Redis dropped them
        yield from SOURCE

    try:
        engine.reconcile(APP, source())
    except LimiterError:
        assert snapshot(client) == before
        assert rebuild_keys(client) == []
    else:
        # had it gone through, the whole source would have to be live
        assert engine.usage(APP).users == 5004
        assert engine.group_usage(APP, "twice") is not None


def test_a_retype_between_av_room_and_group_moves_its_counts(engine):
    engine.register_users(APP, ["o", "m"])
    engine.create_group(APP, "x", "AVChatRoom", "o", ["m"])
    engine.create_group(APP, "y", "Public", "o", ["m"])
    source: list[Record] = [AccountRecord("o"), AccountRecord("m")]
    source += [GroupRecord("x", "Public", ("m",), "o"), GroupRecord("y", "AVChatRoom", ("m",))]
    report = engine.reconcile(APP, source)
    assert report.groups == Drift(2, 2, 0, 0)
    assert report.groups_retyped == 2
    assert report.av_chatrooms == Drift(1, 1, 1, 1)
    assert report.memberships == Drift(4, 3, 0, 1)  # y:o went
    # o: Public y (counted) became an AV room, AV room x became Public: still 1 group; m same
    assert report.changes == (CountChange("group", "y", "group_members", 2, 1),)
    assert_counts_match(engine, source)


# -- big sources: chunked loads and chunked comparisons ---------------------------------------


N = 8000  # more than a load (5000 entries) and a comparison (5000); 16,000 friend-list entries
ONE_WAY = 500  # peers whose side of the friendship the second source drops
PEOPLE = [f"u{i:05d}" for i in range(N + 100)]


def big_source_a() -> list[Record]:
    records: list[Record] = [AccountRecord(p) for p in ["hub", *PEOPLE[:N]]]
    records += [FriendRecord("hub", p, both_ways=True) for p in PEOPLE[:N]]
    records.append(GroupRecord("mega", "Public", tuple(PEOPLE[:N]), owner="hub"))
    records.append(GroupRecord("stage", "AVChatRoom", (), owner=PEOPLE[0]))
    return records


def big_source_b() -> list[Record]:
    records: list[Record] = [AccountRecord(p) for p in ["hub", *PEOPLE[: N + 100]]]
    # mega in two parts, far apart in the stream
    records.append(GroupRecord("mega", "Public", tuple(PEOPLE[1:3000]), owner="hub"))
    records += [FriendRecord("hub", p, both_ways=True) for p in PEOPLE[: N - ONE_WAY]]
    records += [FriendRecord("hub", p) for p in PEOPLE[N - ONE_WAY : N]]  # one way only now
    records.append(GroupRecord("mega", "Public", tuple(PEOPLE[3000 : N + 1])))
    records.append(GroupRecord("stage", "AVChatRoom", (), owner=PEOPLE[0]))
    return records


def test_big_sources_load_and_compare_in_chunks(engine, monkeypatch):
    loads: list[int] = []
    prepare = Rebuild.prepare

    def counting_prepare(self: Rebuild, records: Any) -> Any:
        loads.append(len(records))
        return prepare(self, records)

    monkeypatch.setattr(Rebuild, "prepare", counting_prepare)
    # the app was in use before its first reconcile
    engine.register_users(APP, [PEOPLE[0]])
    engine.create_group(APP, "stage", "AVChatRoom", PEOPLE[0])

    source = big_source_a()
    first = engine.reconcile(APP, iter(source))
    assert len([size for size in loads if size]) >= 2  # several loads
    assert sum(loads) == len(source)
    assert first.accounts == Drift(1, N + 1, N, 0)
    assert first.friendships == Drift(0, 2 * N, 2 * N, 0)
    assert first.groups == Drift(1, 2, 1, 0)
    assert first.memberships == Drift(1, N + 2, N + 1, 0)
    assert first.av_chatrooms == Drift(1, 1, 0, 0)
    # friends: hub and each of the N; groups_per_user: the same N + 1; members: mega
    assert first.changes_total == 2 * (N + 1) + 1
    assert first.truncated is True
    assert len(first.changes) == 1000

    loads.clear()
    source = big_source_b()
    second = engine.reconcile(APP, iter(source))
    assert len([size for size in loads if size]) >= 2
    assert sum(loads) == len(source)
    assert second.accounts == Drift(N + 1, N + 101, 100, 0)
    # hub keeps N entries; ONE_WAY peers lose theirs
    assert second.friendships == Drift(2 * N, 2 * N - ONE_WAY, 0, ONE_WAY)
    assert second.groups == Drift(2, 2, 0, 0)
    assert second.memberships == Drift(N + 2, N + 2, 1, 1)  # u00000 left mega, u08000 came
    assert second.changes_total == ONE_WAY + 2
    assert second.truncated is False
    first_one_way = PEOPLE[N - ONE_WAY]
    assert second.changes[0] == CountChange("user", "u00000", "groups_per_user", 1, 0)
    assert second.changes[1] == CountChange("user", first_one_way, "friends", 1, 0)
    assert second.changes[ONE_WAY] == CountChange("user", PEOPLE[N - 1], "friends", 1, 0)
    assert second.changes[-1] == CountChange("user", PEOPLE[N], "groups_per_user", 0, 1)

    sample = ["hub", "u00000", "u00050", "u04999", "u05000", PEOPLE[N - ONE_WAY - 1]]
    sample += [first_one_way, PEOPLE[N]]
    assert_counts_match(engine, source, sample=sample)
    assert engine.user_usage(APP, "hub").friends == N
    assert engine.group_usage(APP, "mega").members == N + 1


PEERS = [f"p{i:02d}" for i in range(30)]


def random_source(rng: random.Random) -> list[Record]:
    """Random friend lists and group memberships of 30 people (ids sort like their index)."""
    records: list[Record] = [AccountRecord(p) for p in PEERS]
    records += [FriendRecord(a, b) for a in PEERS for b in PEERS if a != b and rng.random() < 0.05]
    for g in range(8):
        if rng.random() < 0.8:
            members = tuple(rng.sample(PEERS, rng.randint(0, 12)))
            records.append(GroupRecord(f"g{g}", "Public", members))
    return records


def relations(records: list[Record]) -> dict[str, set[tuple[str, str]]]:
    """(subject, other) pairs per counted relation, as the hand count of a source."""
    found: dict[str, set[tuple[str, str]]] = {"friends": set(), "members": set()}
    for record in records:
        if isinstance(record, FriendRecord):
            found["friends"].add((record.user, record.friend))
        elif isinstance(record, GroupRecord):
            found["members"] |= {(record.id, member) for member in record.members}
    found["groups_per_user"] = {(user, group) for group, user in found["members"]}
    return found


def test_relations_split_over_many_load_calls_load_whole(engine, monkeypatch):
    """A load's relations go in load_relations calls of RELATION_BATCH fields; a list longer
    than a call is split over several, and every field arrives."""
    monkeypatch.setattr(loads, "RELATION_BATCH", 7)
    engine.reconcile(APP, iter(big_source_a()))
    hub = engine.user_usage(APP, "hub")
    assert (hub.friends, hub.groups) == (N, 1)
    assert engine.group_usage(APP, "mega").members == N + 1
    assert engine.user_usage(APP, PEOPLE[N - 1]).friends == 1
    again = engine.reconcile(APP, iter(big_source_a()))
    assert again.changes_total == 0


@pytest.mark.parametrize("seed", range(6))
def test_a_comparison_in_tiny_chunks_matches_set_arithmetic(engine, monkeypatch, figures, seed):
    """Both sets are walked together, a chunk ending at the smaller of their last entries:
    with 3 entries a chunk, boundaries fall inside a subject's run, where one set is empty,
    where one set runs out first. Drifts and count changes must still be exact."""
    rng = random.Random(seed)
    old, new = random_source(rng), random_source(rng)
    engine.reconcile(APP, old)
    monkeypatch.setattr(rebuild, "COMPARE_CHUNK", 3)
    report = engine.reconcile(APP, new)
    before, after = relations(old), relations(new)
    for drift, name in ((report.friendships, "friends"), (report.memberships, "members")):
        assert drift == Drift(
            len(before[name]),
            len(after[name]),
            len(after[name] - before[name]),
            len(before[name] - after[name]),
        )
    expected = set()
    for count, scope in (("friends", "user"), ("groups_per_user", "user"), ("members", "group")):
        old_counts = Counter(subject for subject, _ in before[count])
        new_counts = Counter(subject for subject, _ in after[count])
        for subject in old_counts | new_counts:
            if old_counts[subject] != new_counts[subject]:
                limit = "group_members" if count == "members" else count
                expected.add(
                    CountChange(scope, subject, limit, old_counts[subject], new_counts[subject])
                )
    assert set(report.changes) == expected
    assert report.changes_total == len(expected)
    figures.record("reconcile", "random drifts compared 3 entries a chunk", 1)
    figures.record(
        "reconcile",
        "relation entries compared in tiny chunks",
        sum(len(pairs) for pairs in (*before.values(), *after.values())),
    )


def test_the_listed_changes_are_the_first_in_order_when_truncated(engine):
    """More than 1000 count changes: the report lists the first 1000 in its own order
    (scope, id, limit), so a group's change sorts before any user's."""
    engine.register_users(APP, ["x"])
    engine.create_group(APP, "stage", "AVChatRoom", "x")
    source: list[Record] = [AccountRecord("x"), GroupRecord("stage", "AVChatRoom", (), "x")]
    source += [AccountRecord(f"u{i:04d}") for i in range(1001)] + [AccountRecord("zz")]
    source += [FriendRecord(f"u{i:04d}", "x") for i in range(1001)]
    source.append(GroupRecord("club", "Public", ("zz",)))
    report = engine.reconcile(APP, source)
    # friends: 1001 users; groups_per_user: zz; group_members: club
    assert report.changes_total == 1003
    assert report.truncated is True
    expected = sorted(report.changes, key=lambda c: (c.scope, c.id, c.count))
    assert list(report.changes) == expected
    assert report.changes[0] == CountChange("group", "club", "group_members", 0, 1)
    assert report.changes[-1] == CountChange("user", "u0998", "friends", 0, 1)


# -- empty sources, new apps, the plan, the audit and the month's peaks ------------------------


def test_an_empty_source_empties_the_app_but_keeps_its_plan(engine, client):
    engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 20))
    engine.set_override(APP, "friends", 40, user="a")
    build_live_app(engine)
    plan = engine.plan(APP)
    report = engine.reconcile(APP, [])
    assert report.totals() == dict.fromkeys(report.totals(), 0)
    assert report.accounts == Drift(4, 0, 0, 4)
    assert report.groups == Drift(3, 0, 0, 3)
    assert engine.usage(APP) == Usage(0, 0, 0)
    assert engine.user_usage(APP, "a").friends == 0
    assert engine.group_usage(APP, "g1") is None
    assert engine.plan(APP) == plan
    assert engine.limits(APP).for_user("a", "friends").value == 40
    keys = keys_of(engine, APP)
    assert [key for key in relation_keys(client) if client.exists(key)] == []
    assert [key for key in keys.indexes() if client.exists(key)] == []
    assert client.exists(keys.plan) == 1


def test_the_first_reconcile_of_a_new_app(engine):
    """A new app (no keys at all yet) and a source without AV chat rooms."""
    source = [AccountRecord("a"), AccountRecord("b"), FriendRecord("a", "b", both_ways=True)]
    source.append(GroupRecord("g", "Public", ("b",), owner="a"))
    report = engine.reconcile(APP, source)
    assert report.accounts == Drift(0, 2, 2, 0)
    assert report.friendships == Drift(0, 2, 2, 0)
    assert report.av_chatrooms == Drift(0, 0, 0, 0)
    assert_counts_match(engine, source)


def test_live_keys_keep_no_expiry_and_no_rebuild_keys_stay(engine, client):
    build_live_app(engine)
    engine.reconcile(APP, SOURCE)
    kept = [key for key in keys_of(engine, APP).indexes() if client.exists(key)]
    kept += relation_keys(client)
    assert len(kept) > 10
    assert {key: client.ttl(key) for key in kept} == dict.fromkeys(kept, -1)
    assert rebuild_keys(client) == []


def test_a_reconcile_is_audited_with_its_counts(engine, clock):
    build_live_app(engine)
    engine.reconcile(APP, SOURCE, actor="ops@example")
    (entry,) = engine.audit(APP)
    assert (entry.at, entry.actor, entry.action, entry.field) == (
        clock.now(),
        "ops@example",
        "reconcile",
        "counters",
    )
    assert entry.before == {
        "accounts": 4,
        "friendships": 5,
        "groups": 3,
        "memberships": 7,
        "av_chatrooms": 1,
    }
    assert entry.after == {
        "accounts": 4,
        "friendships": 3,
        "groups": 4,
        "memberships": 6,
        "av_chatrooms": 1,
    }
    engine.reconcile(APP, [])
    assert [(e.actor, e.after["groups"]) for e in engine.audit(APP)] == [
        ("python", 0),
        ("ops@example", 4),
    ]


def test_a_reconcile_updates_the_months_peak_groups(engine, clock):
    clock.set(at(2026, 11, 20, 10, 0))
    build_live_app(engine)  # 3 groups
    clock.set(at(2026, 11, 26, 12, 0))
    engine.reconcile(APP, SOURCE)  # 4 groups
    usage = engine.monthly_usage(APP, NOVEMBER)
    assert (usage.peak_groups, usage.peak_groups_day) == (4, date(2026, 11, 26))
    clock.set(at(2026, 11, 28, 12, 0))
    engine.reconcile(APP, [AccountRecord("a"), GroupRecord("stage", "AVChatRoom", (), "a")])
    usage = engine.monthly_usage(APP, NOVEMBER)
    assert (usage.peak_groups, usage.peak_groups_day) == (4, date(2026, 11, 26))
    # December opens with a reconcile that drops the last group: its peak is the 1 before
    clock.set(at(2026, 12, 1, 0, 0, 5))
    engine.reconcile(APP, [])
    december = engine.monthly_usage(APP, "2026-12")
    assert (december.peak_groups, december.peak_groups_day) == (1, date(2026, 12, 1))
    assert engine.usage(APP).groups == 0


# -- the async engine reads an async source ----------------------------------------------------


def test_the_async_engine_reads_an_async_iterable(backend: Backend, clock):
    async def source() -> AsyncIterator[Record]:
        for i in range(5500):
            yield AccountRecord(f"a{i:05d}")
        yield GroupRecord("stage", "AVChatRoom", (), owner="a00000")

    async def run() -> Any:
        engine = AsyncLimiter(
            AsyncStore(backend.async_client()),
            settings=Settings(redis_url="memory://unused", cache_seconds=0),
            clock=clock,
        )
        try:
            await engine.register_users(APP, ["a00000"])
            await engine.create_group(APP, "stage", "AVChatRoom", "a00000")
            report = await engine.reconcile(APP, source())
            return report, await engine.usage(APP)
        finally:
            await engine.aclose()

    report, usage = asyncio.run(run())
    assert report.accounts == Drift(1, 5500, 5499, 0)
    assert usage == Usage(5500, 1, 1)
