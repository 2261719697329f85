"""Races at scale on the real server (issue 6): 8 OS processes fire mixed operations at a few
hot groups and users under small limits, one of them changing those limits as it goes; then
every invariant is checked from Redis itself (:mod:`tests.invariants`).

Which additions win is left to the race; what is asserted is that the state left behind is one
the engine could legally reach. Two rules keep that checkable. Accounts that get deleted are
each owned by one process, the only one that links them to anything, so a relation never
names an unregistered account and no call is refused for naming one (accounts first refuses
those, ``require_registered``; ``tests/test_races.py`` races deletions against relating). And
after each limit change the changing process waits until every other process has finished the
operation it had in flight (it may have been decided under the old limit), then records what
the engine reports above the new limit: only those entities may end above it.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import redis

from limiter import (
    GroupExists,
    GroupNotFound,
    Limiter,
    Outcome,
    Refusal,
    Refused,
    Settings,
    SyncStore,
)
from limiter.results import Item, OverLimit
from limiter.store.keys import AppKeys
from limiter.testing import ManualClock
from tests.conftest import Backend, forget_app, keys_of, real_client_or_skip
from tests.figures import Recorder
from tests.invariants import check_app, link, relation_key, unlink
from tests.test_races import forget, race

APP = "race-scale"
PROCESSES = 8
HOT_USERS = tuple(f"h{i:02d}" for i in range(12))  # never deleted: any process links them
ONE_WAY_USERS = HOT_USERS[8:]  # every single-way add or removal has one of these at one end
OWN_USERS = 5  # per process: only it registers, deletes and links them
HOT_GROUPS = ("g0", "g1", "g2", "g3", "g4", "g5")
GROUP_TYPES = ("Private", "Public", "ChatRoom", "AVChatRoom")
# App overrides at the start, and the range the limit changer moves each one in: small, so
# every limit refuses during the race. 12 hot + 40 own accounts compete for `users`.
START_LIMITS = {
    "users": 30,
    "friends": 5,
    "groups_per_user": 3,
    "group_members": 5,
    "av_chatrooms": 1,
}
LIMIT_RANGES = {
    "users": (24, 40),
    "friends": (2, 8),
    "groups_per_user": (1, 5),
    "group_members": (2, 8),
    "av_chatrooms": (0, 2),
}
DRAIN_SECONDS = 60
FINISHED = -1  # a process's progress slot once it has run all its operations


@dataclass(frozen=True)
class Plan:
    """What one process does: ``operations`` of the mix, drawn from ``seed``; it counts its
    finished operations in ``progress[index]`` (a shared array) for the limit changer."""

    index: int
    operations: int
    seed: int
    progress: Any
    changes_limits: bool


@dataclass(frozen=True)
class Summary:
    """What one process reports: how many operations it ran and when (``time.monotonic``,
    one clock for every process), the outcomes by kind, the friend pairs a single-way
    operation touched, and (the limit changer) the last over-limit report it recorded."""

    ran: int
    started: float
    ended: float
    tally: dict[str, int]
    one_way: list[list[str]]
    above: list[tuple[str, str, str, int]]


def _refused(refusal: Refusal, asked: int = 1) -> str:
    """A refusal's outcome, marked unjustified when the ``asked`` additions would have fit
    under the maximum the refusal itself reports (a refusal must see a full list)."""
    room = refusal.maximum is None or refusal.current + asked <= refusal.maximum
    shown = f"refused {refusal.code}"
    return f"unjustified {shown} ({refusal.current} of {refusal.maximum})" if room else shown


def _outcome(item: Item) -> str:
    return _refused(item.refusal) if item.refusal is not None else str(item.outcome)


class Player:
    """One process's side of the race: picks operations, runs them, tallies the outcomes."""

    def __init__(self, engine: Limiter, app: str, plan: Plan) -> None:
        self.engine, self.app, self.plan = engine, app, plan
        self.rng = random.Random(plan.seed)
        self.own = [f"w{plan.index}u{n}" for n in range(OWN_USERS)]
        self.registered: set[str] = set()
        self.tally: Counter[str] = Counter()
        self.one_way: set[frozenset[str]] = set()
        self.above: list[tuple[str, str, str, int]] = []  # the last change's over-limit report
        self.mix: dict[Callable[[], None], int] = {
            self.join: 25,
            self.leave: 12,
            self.befriend: 22,
            self.unfriend: 8,
            self.one_way_friend: 5,
            self.destroy: 3,
            self.create: 6,
            self.account: 6,
        }
        if plan.changes_limits:
            self.mix[self.change_limit] = 12

    def note(self, kind: str, outcome: str) -> None:
        self.tally[f"{kind}: {outcome}"] += 1

    def people(self, count: int) -> list[str]:
        """``count`` distinct accounts this process may link: hot ones and its registered own."""
        return self.rng.sample([*HOT_USERS, *sorted(self.registered)], count)

    def run(self) -> Summary:
        actions, weights = list(self.mix), list(self.mix.values())
        started, ran = time.monotonic(), 0
        try:
            while ran < self.plan.operations:
                self.rng.choices(actions, weights)[0]()
                ran += 1
                self.plan.progress[self.plan.index] = ran
        finally:
            self.plan.progress[self.plan.index] = FINISHED
        one_way = sorted(sorted(pair) for pair in self.one_way)
        return Summary(ran, started, time.monotonic(), dict(self.tally), one_way, self.above)

    def join(self) -> None:
        group, users = self.rng.choice(HOT_GROUPS), self.people(self.rng.choice((1, 1, 2)))
        try:
            result = self.engine.add_members(self.app, group, users)
        except Refused as refused:  # 10014: the eligible ones did not all fit
            self.note("join", _refused(refused.refusal, len(users)))
        except GroupNotFound:
            self.note("join", "no such group")
        else:
            for item in result.items:
                self.note("join", _outcome(item))

    def leave(self) -> None:
        group, (user,) = self.rng.choice(HOT_GROUPS), self.people(1)
        try:
            result = self.engine.remove_members(self.app, group, [user])
        except GroupNotFound:
            self.note("leave", "no such group")
        else:
            self.note("leave", _outcome(result.item(user)))

    def befriend(self) -> None:
        """A both-way add; which of the two asks is random, so pairs race from both sides."""
        user, peer = self.people(2)
        self.note("befriend", _outcome(self.engine.add_friends(self.app, user, [peer]).item(peer)))

    def unfriend(self) -> None:
        user, peer = self.people(2)
        result = self.engine.remove_friends(self.app, user, [peer])
        self.note("unfriend", _outcome(result.item(peer)))

    def one_way_friend(self) -> None:
        anchor = self.rng.choice(ONE_WAY_USERS)
        peer = self.rng.choice([p for p in self.people(2) if p != anchor])
        user, peer = (anchor, peer) if self.rng.random() < 0.5 else (peer, anchor)
        self.one_way.add(frozenset((user, peer)))
        if self.rng.random() < 0.6:
            result = self.engine.add_friends(self.app, user, [peer], both_ways=False)
            self.note("one-way add", _outcome(result.item(peer)))
        else:
            result = self.engine.remove_friends(self.app, user, [peer], both_ways=False)
            self.note("one-way remove", _outcome(result.item(peer)))

    def destroy(self) -> None:
        destroyed = self.engine.destroy_group(self.app, self.rng.choice(HOT_GROUPS))
        self.note("destroy", "destroyed" if destroyed.existed else "no such group")

    def create(self) -> None:
        """Re-create a hot group, of any type (a destroyed Public may come back an AV room)."""
        owner, *members = self.people(self.rng.randint(1, 4))
        group, group_type = self.rng.choice(HOT_GROUPS), self.rng.choice(GROUP_TYPES)
        try:
            self.engine.create_group(self.app, group, group_type, owner, members)
        except Refused as refused:  # 10038 reports the members asked for, not the group's
            asked = 0 if refused.code == 10038 else 1
            self.note("create", _refused(refused.refusal, asked))
        except GroupExists:
            self.note("create", "exists")
        else:
            self.note("create", "created")

    def account(self) -> None:
        """Register one of this process's own accounts, or delete one with all it holds."""
        user = self.rng.choice(self.own)
        if user in self.registered:
            self.engine.delete_users(self.app, [user])
            self.registered.discard(user)
            self.note("account", "deleted")
            return
        item = self.engine.register_users(self.app, [user]).item(user)
        if item.refusal is None:
            self.registered.add(user)
        self.note("account", _outcome(item))

    def change_limit(self) -> None:
        """Move one limit at app, user or group scope, up or down; then record what the
        engine reports above it once every operation decided before the change is done."""
        name = self.rng.choice(list(LIMIT_RANGES))
        value = self.rng.randint(*LIMIT_RANGES[name])
        scope = self.rng.choice(("app", "entity", "entity", "clear"))
        user = group = None
        if scope != "app" and name == "group_members":
            group = self.rng.choice(HOT_GROUPS)
        elif scope != "app" and name in ("friends", "groups_per_user"):
            user = self.rng.choice(HOT_USERS)
        if scope == "clear" and (user or group):
            self.engine.clear_override(self.app, name, user=user, group=group)
        else:
            self.engine.set_override(self.app, name, value, user=user, group=group)
        self.note("limit change", name)
        self.wait_for_operations_in_flight()
        self.above = [(o.scope, o.id, o.limit, o.current) for o in self.engine.over_limit(self.app)]

    def wait_for_operations_in_flight(self) -> None:
        """Until every other process has finished one more operation, or all of them."""
        progress, me = self.plan.progress, self.plan.index
        seen = list(progress)
        deadline = time.monotonic() + DRAIN_SECONDS
        while any(
            i != me and seen[i] != FINISHED and progress[i] == seen[i] for i in range(len(seen))
        ):
            assert time.monotonic() < deadline, "the other processes stopped making progress"
            time.sleep(0.0005)


def _mixed_job(engine: Limiter, app: str, plan: Plan) -> list[tuple[Summary]]:
    return [(Player(engine, app, plan).run(),)]


# -- the race --------------------------------------------------------------------------------------


def _set_up(engine: Limiter) -> None:
    """Hot accounts and groups (one AV room), then the small limits."""
    assert engine.register_users(APP, HOT_USERS).added == HOT_USERS
    for n, group in enumerate(HOT_GROUPS):
        group_type = GROUP_TYPES[n % len(GROUP_TYPES)]
        engine.create_group(APP, group, group_type, HOT_USERS[n], HOT_USERS[n + 1 : n + 3])
    for name, value in START_LIMITS.items():
        engine.set_override(APP, name, value)


def _race_mixed(url: str, operations: int, seed: int) -> list[Summary]:
    """Run the mix in ``PROCESSES`` spawned processes, the first one also changing limits."""
    progress = multiprocessing.get_context("spawn").RawArray("q", PROCESSES)
    plans = [
        Plan(index, operations, seed + index, progress, changes_limits=index == 0)
        for index in range(PROCESSES)
    ]
    return [records[0][0] for records in race(_mixed_job, APP, plans, url)]


@dataclass
class Aftermath:
    """What the rounds so far add up to; the next round's check needs the first two."""

    one_way: set[frozenset[str]] = field(default_factory=set)
    above: list[tuple[str, str, str, int]] = field(default_factory=list)
    tally: Counter[str] = field(default_factory=Counter)
    checks: int = 0
    operations: int = 0


def _race_round(
    url: str, engine: Limiter, client: redis.Redis, seed: int, operations: int, so_far: Aftermath
) -> None:
    """One race of ``operations`` per process, then every invariant checked from Redis."""
    summaries = _race_mixed(url, operations, seed)
    assert [summary.ran for summary in summaries] == [operations] * PROCESSES
    # they really overlapped: every process started before any of them finished
    assert max(s.started for s in summaries) < min(s.ended for s in summaries)
    for summary in summaries:
        so_far.tally.update(summary.tally)
        so_far.one_way.update(frozenset(pair) for pair in summary.one_way)
    if any(outcome.startswith("limit change") for outcome in summaries[0].tally):
        so_far.above = summaries[0].above  # else the last round's report still stands
    grandfathered = {(scope, id, limit): count for scope, id, limit, count in so_far.above}
    report = check_app(
        engine, client, APP, one_way_pairs=so_far.one_way, grandfathered=grandfathered
    )
    assert report.violations == (), "\n".join(map(str, report.violations))
    so_far.checks += report.checks
    so_far.operations += PROCESSES * operations


# Outcomes the race must produce, so that it cannot pass without really racing the limits.
MUST_SUCCEED = (
    "join: added",
    "leave: removed",
    "befriend: added",
    "unfriend: removed",
    "one-way add: added",
    "one-way remove: removed",
    "create: created",
    "destroy: destroyed",
    "account: added",
    "account: deleted",
)
MUST_REFUSE = ("10014", "10036", "10037", "70398")  # and 30010 or 30014


def _refusals(tally: Counter[str]) -> Counter[str]:
    """Refusals by IM code; an unjustified one fails the test right away."""
    unjustified = [outcome for outcome in tally if "unjustified" in outcome]
    assert not unjustified, unjustified
    found: Counter[str] = Counter()
    for outcome, count in tally.items():
        if ": refused " in outcome:
            found[outcome.rsplit(" ", 1)[1]] += count
    return found


def run_and_check(url: str, figures: Recorder, operations: int, rounds: int = 1) -> None:
    """``rounds`` races of ``operations`` per process, each followed by a full check (the
    next one starts from the state it left); then the outcomes must show real contention."""
    client = real_client_or_skip(url)
    engine = Limiter.from_settings(Settings(redis_url=url, cache_seconds=0))
    so_far = Aftermath()
    try:
        _set_up(engine)
        for number in range(rounds):
            _race_round(url, engine, client, 6000 + 100 * number, operations, so_far)
        tally = so_far.tally
        strangers = [outcome for outcome in tally if outcome.endswith(Outcome.NOT_REGISTERED)]
        assert not strangers, strangers  # every id linked was an account (the rule above)
        refusals = _refusals(tally)
        assert set(MUST_REFUSE) <= set(refusals), refusals
        assert refusals["30010"] + refusals["30014"] > 0, refusals
        assert all(tally[outcome] > 0 for outcome in MUST_SUCCEED), tally
        changes = sum(count for outcome, count in tally.items() if outcome.startswith("limit"))
        assert changes > 0

        figures.record("races", f"operations raced ({PROCESSES} processes)", so_far.operations)
        figures.record("races", "invariant checks", so_far.checks)
        figures.record("races", "refusals seen (each one at a full limit)", sum(refusals.values()))
        figures.record("races", "limit changes raced", changes)
        figures.record(
            "races", "entities left above a lowered limit (last round)", len(so_far.above)
        )
    finally:
        engine.close()
        forget(client, APP)


@pytest.mark.redis
def test_mixed_operations_race_keeps_every_invariant(real_url: str, figures: Recorder) -> None:
    run_and_check(real_url, figures, 500)


@pytest.mark.redis
@pytest.mark.heavy
def test_mixed_operations_race_keeps_every_invariant_at_length(
    real_url: str, figures: Recorder
) -> None:
    """8 x 5,000 operations, checked after every 500 (each race stays well within the
    120 s that `race` allows on a loaded 2-core machine)."""
    run_and_check(real_url, figures, 500, rounds=10)


# -- the checker itself: every planted breach is reported ------------------------------------------

Plant = Callable[[redis.Redis, AppKeys], None]
# Each breach, planted over the clean state of `_clean_state`, and the rules it must break.
PLANTED: dict[str, tuple[Plant, set[str]]] = {}


def _planted(*rules: str) -> Callable[[Plant], Plant]:
    """Register a plant under its docstring, with the rules it must break."""

    def register(plant: Plant) -> Plant:
        PLANTED[plant.__doc__ or plant.__name__] = (plant, set(rules))
        return plant

    return register


def _join(client: redis.Redis, keys: AppKeys, user: str, group: str) -> None:
    """A membership stored correctly on both sides (for a counted group type)."""
    link(client, keys, "members", group, user)
    link(client, keys, "joined", user, group)


def _befriend(client: redis.Redis, keys: AppKeys, a: str, b: str) -> None:
    """b in a's list, stored correctly in both indexes."""
    link(client, keys, "friends", a, b)
    link(client, keys, "friended_by", b, a)


@_planted("member_without_join")
def _on_the_groups_side_only(client: redis.Redis, keys: AppKeys) -> None:
    """a membership on the group's side only"""
    link(client, keys, "members", "room", "c")


@_planted("join_without_member")
def _on_the_users_side_only(client: redis.Redis, keys: AppKeys) -> None:
    """a membership on the user's side only"""
    link(client, keys, "joined", "d", "room")


@_planted("member_without_join", "join_without_member")
def _av_room_counted(client: redis.Redis, keys: AppKeys) -> None:
    """an AV room membership counted toward groups_per_user"""
    _join(client, keys, "a", "live")


@_planted("member_not_registered", "unindexed")
def _unregistered_member(client: redis.Redis, keys: AppKeys) -> None:
    """a member never registered"""
    _join(client, keys, "zed", "room")


@_planted("group_missing")
def _missing_group(client: redis.Redis, keys: AppKeys) -> None:
    """a member of a group that does not exist"""
    _join(client, keys, "a", "ghost")


@_planted("av_rooms")
def _public_av_room(client: redis.Redis, keys: AppKeys) -> None:
    """a Public group in av_rooms"""
    client.sadd(keys.av_rooms, "room")


@_planted("friend_index")
def _unindexed_friend(client: redis.Redis, keys: AppKeys) -> None:
    """a friend list entry without its reverse index"""
    unlink(client, keys, "friended_by", "b", "a")


@_planted("friend_asymmetric")
def _half_friendship(client: redis.Redis, keys: AppKeys) -> None:
    """a both-way friendship left on one side only"""
    unlink(client, keys, "friends", "b", "a")
    unlink(client, keys, "friended_by", "a", "b")


@_planted("friend_not_registered", "unindexed")
def _unregistered_friend(client: redis.Redis, keys: AppKeys) -> None:
    """a friend never registered"""
    _befriend(client, keys, "a", "zed")
    _befriend(client, keys, "zed", "a")


@_planted("over_limit")
def _full_group(client: redis.Redis, keys: AppKeys) -> None:
    """a group above its limit"""
    _join(client, keys, "c", "room")
    _join(client, keys, "d", "room")


@_planted("malformed", "counter")
def _a_value_on_a_relation(client: redis.Redis, keys: AppKeys) -> None:
    """a relation field carrying a value"""
    client.hset(relation_key(client, keys, "members", "room"), "c", "1")


@_planted("unindexed")
def _registered_stray(client: redis.Redis, keys: AppKeys) -> None:
    """a registered account listed as a stray"""
    client.sadd(keys.strays, "a")


@pytest.fixture
def sync_engine(backend: Backend, clock: ManualClock) -> Iterator[Limiter]:
    """A blocking engine on ``backend`` (the checker only reads: one facade is enough)."""
    engine = Limiter(
        SyncStore(backend.sync_client()),
        settings=Settings(redis_url="memory://unused", cache_seconds=0),
        clock=clock,
    )
    yield engine
    engine.close()


def _clean_state(engine: Limiter) -> None:
    """Accounts a..d; "room" (Public, a and b, its own limit 3); "live" (AV room, c); a and b
    friends both ways; d in c's list only (a single-way add)."""
    engine.register_users(APP, ["a", "b", "c", "d"])
    engine.create_group(APP, "room", "Public", "a", ["b"])
    engine.create_group(APP, "live", "AVChatRoom", "c")
    engine.add_friends(APP, "a", ["b"])
    engine.add_friends(APP, "c", ["d"], both_ways=False)
    engine.set_override(APP, "group_members", 3, group="room")


ONE_WAY_CD = {frozenset(("c", "d"))}


def test_checker_passes_a_clean_state_and_sees_single_way_pairs(
    sync_engine: Limiter, client: redis.Redis
) -> None:
    _clean_state(sync_engine)
    report = check_app(sync_engine, client, APP, one_way_pairs=ONE_WAY_CD)
    assert report.violations == ()
    assert report.checks >= 20
    assert check_app(sync_engine, client, APP).rules() == {"friend_asymmetric"}


def test_checker_reports_every_planted_breach(
    sync_engine: Limiter, client: redis.Redis, figures: Recorder
) -> None:
    keys = keys_of(sync_engine, APP)
    for name, (plant, rules) in PLANTED.items():
        forget_app(client, APP)
        _clean_state(sync_engine)
        plant(client, keys)
        report = check_app(sync_engine, client, APP, one_way_pairs=ONE_WAY_CD)
        assert report.rules() == rules, (name, report.violations)
    figures.record("races", "broken states planted, each reported", len(PLANTED))


def test_checker_allows_what_a_lowered_limit_left_above_it_and_no_more(
    sync_engine: Limiter, client: redis.Redis
) -> None:
    _clean_state(sync_engine)
    keys = keys_of(sync_engine, APP)
    _join(client, keys, "c", "room")
    _join(client, keys, "d", "room")  # 4 members, limit 3

    def rules(held_then: int) -> set[str]:
        grandfathered = {("group", "room", "group_members"): held_then}
        report = check_app(
            sync_engine, client, APP, one_way_pairs=ONE_WAY_CD, grandfathered=grandfathered
        )
        return report.rules()

    assert rules(4) == set()
    assert rules(3) == {"over_limit"}  # it grew after the limit dropped


class _Misreporting:
    """The engine, except that one read answers one more than Redis holds: proves the checker
    compares the engine's reports with the raw sets instead of trusting them."""

    def __init__(self, engine: Limiter, method: str) -> None:
        self._engine, self._method = engine, method

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._engine, name)
        if name != self._method:
            return found
        return lambda *args: _one_more(found(*args))


def _one_more(result: Any) -> Any:
    if isinstance(result, tuple):  # over_limit: report a group that is not over
        return (*result, OverLimit("group", "room", "group_members", 3, 3))
    counted = {"users", "friends", "members"} & set(vars(result))
    name = counted.pop()
    return replace(result, **{name: getattr(result, name) + 1})


@pytest.mark.parametrize(
    ("method", "rule"),
    [
        ("usage", "counter"),
        ("user_usage", "counter"),
        ("group_usage", "counter"),
        ("over_limit", "over_limit_report"),
    ],
)
def test_checker_reports_an_engine_count_that_differs_from_the_sets(
    sync_engine: Limiter, client: redis.Redis, method: str, rule: str
) -> None:
    _clean_state(sync_engine)
    lying: Any = _Misreporting(sync_engine, method)
    assert check_app(lying, client, APP, one_way_pairs=ONE_WAY_CD).rules() == {rule}
