"""Races on the real server: OS processes, each with its own connection, hit one app at once.

Every worker is a ``spawn``-ed process that builds its own :class:`Limiter` from settings,
waits at a barrier with the others, then fires its attempts. Afterwards the tests check the
limits held and read Redis itself to check that every relation is stored on both sides.
"""

from __future__ import annotations

import multiprocessing
import queue
import random
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import redis

from limiter import Limiter, NotRegistered, Outcome, Refusal, Refused, Settings
from limiter.results import FriendItem
from limiter.store.keys import AppKeys
from tests.conftest import forget_app, keys_of, real_client_or_skip
from tests.invariants import check_app, relation_count, relation_key, stored_pairs

pytestmark = pytest.mark.redis

WORKERS = 4
BARRIER_SECONDS = 60
RESULT_SECONDS = 120

# -- workers (module level, so the spawned processes can import them) ---------------------------


def _engine(url: str) -> Limiter:
    engine = Limiter.from_settings(Settings(redis_url=url, cache_seconds=0))
    engine.store.client.ping()  # connect before the start line, not after it
    return engine


def _worker(
    job: Callable[[Limiter, str, Any], list[tuple[Any, ...]]],
    url: str,
    app: str,
    plan: Any,
    barrier: Any,
    results: Any,
    index: int,
) -> None:
    """Run ``job`` after every worker is ready; report (index, records) or (index, traceback)."""
    try:
        engine = _engine(url)
        try:
            barrier.wait(BARRIER_SECONDS)
            results.put((index, job(engine, app, plan)))
        finally:
            engine.close()
    except BaseException:
        barrier.abort()
        results.put((index, traceback.format_exc()))


def _why(refusal: Refusal | None) -> tuple[Any, ...]:
    """A refusal's fields for a record (code, scope id, current, maximum), or four Nones."""
    if refusal is None:
        return (None, None, None, None)
    return (refusal.code, refusal.scope_id, refusal.current, refusal.maximum)


def _add_members_job(engine: Limiter, app: str, plan: Any) -> list[tuple[Any, ...]]:
    group, candidates = plan
    records: list[tuple[Any, ...]] = []
    for user in candidates:
        try:
            result = engine.add_members(app, group, [user])
        except Refused as refused:
            records.append((user, "refused", refused.code, refused.current, refused.maximum))
        else:
            item = result.item(user)
            records.append((user, str(item.outcome), None, result.size, None))
    return records


def _friends_job(engine: Limiter, app: str, plan: Any) -> list[tuple[Any, ...]]:
    records: list[tuple[Any, ...]] = []
    for action, user, peer in plan:
        if action == "add":
            item = engine.add_friends(app, user, [peer], both_ways=True).item(peer)
        else:
            item = engine.remove_friends(app, user, [peer], both_ways=True).item(peer)
        records.append((action, user, peer, str(item.outcome), *_why(item.refusal)))
    return records


def _groups_per_user_job(engine: Limiter, app: str, plan: Any) -> list[tuple[Any, ...]]:
    user, steps = plan
    records: list[tuple[Any, ...]] = []
    for action, group, owner in steps:
        if action == "add":
            item = engine.add_members(app, group, [user]).item(user)
            records.append((action, group, str(item.outcome), *_why(item.refusal)))
        else:
            try:
                created = engine.create_group(app, group, "Public", owner, [user])
            except Refused as refused:
                records.append((action, group, "refused", *_why(refused.refusal)))
            else:
                records.append((action, group, "added", None, None, created.members, None))
    return records


# -- driving the race ------------------------------------------------------------------------------


def raced(
    job: Callable[[Limiter, str, Any], list[tuple[Any, ...]]],
    app: str,
    plans: Sequence[Any],
    url: str,
) -> list[tuple[Any, ...]]:
    """:func:`race`, every worker's records in one list (in plan order)."""
    return [record for worker in race(job, app, plans, url) for record in worker]


def race(
    job: Callable[[Limiter, str, Any], list[tuple[Any, ...]]],
    app: str,
    plans: Sequence[Any],
    url: str,
) -> list[list[tuple[Any, ...]]]:
    """Run ``job(engine, app, plans[i])`` in one spawned process per plan, each on the store
    at ``url``, all released at once by a barrier; return each worker's records, in plan
    order."""
    assert len(plans) >= WORKERS
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(plans))
    results = context.Queue()
    processes = [
        context.Process(
            target=_worker, args=(job, url, app, plan, barrier, results, index), daemon=True
        )
        for index, plan in enumerate(plans)
    ]
    for process in processes:
        process.start()
    collected: dict[int, Any] = {}
    try:
        deadline = time.monotonic() + RESULT_SECONDS
        while len(collected) < len(processes):
            assert time.monotonic() < deadline, "the workers did not finish in time"
            try:
                index, report = results.get(timeout=0.5)
            except queue.Empty:
                # a worker that died without reporting (say, on import) fails the test now
                silent = [
                    p.exitcode
                    for i, p in enumerate(processes)
                    if i not in collected and p.exitcode not in (None, 0)
                ]
                assert not silent, f"a worker died without a report: exit codes {silent}"
                continue
            collected[index] = report
    finally:
        for process in processes:
            process.join(RESULT_SECONDS)
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
        results.close()
        results.join_thread()
    failures = [report for report in collected.values() if isinstance(report, str)]
    assert not failures, "\n".join(failures)
    assert [process.exitcode for process in processes] == [0] * len(processes)
    return [collected[index] for index in range(len(plans))]


# -- reading Redis itself -------------------------------------------------------------------------


def forget(client: redis.Redis, app: str) -> None:
    """Delete this app's keys (only them: other tests may share the database) and disconnect."""
    forget_app(client, app)
    client.close()


def assert_memberships_consistent(client: redis.Redis, keys: AppKeys) -> set[tuple[str, str]]:
    """members holds (g, u) exactly when joined or joined_free holds (u, g), no group is
    missing from the groups hash, and nobody is in both joined sets; returns members."""
    members = stored_pairs(client, keys, "members")
    joined = stored_pairs(client, keys, "joined")
    joined_free = stored_pairs(client, keys, "joined_free")
    assert not joined & joined_free
    assert {(g, u) for u, g in joined | joined_free} == members
    assert {g for g, _ in members} <= set(client.hkeys(keys.groups))
    return members


def assert_friends_consistent(client: redis.Redis, keys: AppKeys) -> set[tuple[str, str]]:
    """friended_by is exactly the reverse of friends; returns friends."""
    friends = stored_pairs(client, keys, "friends")
    friended_by = stored_pairs(client, keys, "friended_by")
    assert {(b, a) for a, b in friends} == friended_by
    return friends


# -- 1. 200 attempts at the last 7 seats of a group ------------------------------------------------


def test_group_fill_race_takes_exactly_the_free_seats(real_url: str) -> None:
    app, group = "race-fill", "crowded"
    client = real_client_or_skip(real_url)
    engine = Limiter.from_settings(Settings(redis_url=real_url, cache_seconds=0))
    try:
        users = [f"u{i:03d}" for i in range(100)]  # trial: 100 accounts
        assert engine.register_users(app, users).added == tuple(users)
        owner, initial, candidates = users[0], users[1:13], users[13:93]
        created = engine.create_group(app, group, "Public", owner, initial)
        assert created.members == 13
        limit = engine.limits(app).group_members["Public"].value
        assert limit == 20

        # 4 workers x 50 attempts over 80 candidates: each candidate is tried by 2 or 3
        # workers, in a different order in each, so the same seat is fought over.
        plans = []
        for index in range(WORKERS):
            mine = [candidates[(index * 20 + i) % len(candidates)] for i in range(50)]
            random.Random(index).shuffle(mine)
            plans.append((group, mine))
        records = [
            record for worker in race(_add_members_job, app, plans, real_url) for record in worker
        ]

        assert len(records) == 200
        by_outcome = Counter(record[1] for record in records)
        assert set(by_outcome) <= {str(Outcome.ADDED), str(Outcome.ALREADY), "refused"}
        added = [record[0] for record in records if record[1] == str(Outcome.ADDED)]
        assert len(added) == 7  # each seat went to one attempt
        assert len(set(added)) == 7
        assert set(added) <= set(candidates)
        # "already" only for someone who really got in; a refusal always saw the group
        # exactly full (never over-full); an add saw the group grow by one within its limit
        for user, outcome, code, current, maximum in records:
            if outcome == str(Outcome.ALREADY):
                assert user in added
            elif outcome == "refused":
                assert (code, current, maximum) == (10014, 20, 20)
            else:
                assert 14 <= current <= 20
        assert by_outcome["refused"] > 0

        usage = engine.group_usage(app, group)
        assert usage is not None
        assert usage.members == 20
        keys = keys_of(engine, app)
        assert relation_count(client, keys, "members", group) == 20
        members = assert_memberships_consistent(client, keys)
        assert members == {(group, user) for user in (owner, *initial, *added)}
        for user in (owner, *initial, *added):
            assert relation_count(client, keys, "joined", user) == 1
        assert not stored_pairs(client, keys, "joined_free")
    finally:
        engine.close()
        forget(client, app)


# -- 2. friend adds racing from both sides, with removals ------------------------------------------


def test_friend_race_from_both_sides_stays_symmetric_and_within_limits(real_url: str) -> None:
    app = "race-friends"
    client = real_client_or_skip(real_url)
    engine = Limiter.from_settings(Settings(redis_url=real_url, cache_seconds=0))
    try:
        users = [f"f{i:02d}" for i in range(30)]
        assert engine.register_users(app, users).added == tuple(users)
        limit = engine.limits(app).app["friends"].value
        assert limit == 20
        hubs, others = users[:5], users[5:]
        # Hub pairs: every hub with every other user (29 peers > 20), only ever added, so
        # each hub must end exactly full. Ring pairs among the others: added and removed;
        # nobody but a hub can get near the limit (at most 5 hubs + 6 ring neighbours).
        hub_pairs = [(h, u) for n, h in enumerate(hubs) for u in users[n + 1 :]]
        ring_pairs = [
            (others[i], others[(i + step) % len(others)])
            for i in range(len(others))
            for step in (1, 2, 3)
        ]
        assert len(hub_pairs) == 135
        assert len(ring_pairs) == 75

        plans = []
        for index in range(WORKERS):
            rng = random.Random(1000 + index)
            flip = index % 2 == 1  # odd workers ask from the other side
            ops = [("add", *((b, a) if flip else (a, b))) for a, b in hub_pairs]
            for a, b in ring_pairs:
                a, b = (b, a) if flip else (a, b)
                ops.append(("add", a, b))
                if rng.random() < 0.4:
                    ops.append(("remove", b, a) if rng.random() < 0.5 else ("remove", a, b))
            rng.shuffle(ops)
            plans.append(ops)
        records = [
            record for worker in race(_friends_job, app, plans, real_url) for record in worker
        ]
        assert len(records) == sum(len(plan) for plan in plans)
        assert len(records) >= 4 * 210

        keys = keys_of(engine, app)
        friends = assert_friends_consistent(client, keys)
        assert friends == {(b, a) for a, b in friends}  # symmetric
        for user in users:
            assert relation_count(client, keys, "friends", user) <= 20
            assert engine.user_usage(app, user).friends == relation_count(
                client, keys, "friends", user
            )
        for hub in hubs:
            assert relation_count(client, keys, "friends", hub) == 20

        # Every refusal saw a full list (never over-full) of the user it names.
        refusals = [record for record in records if record[3] == str(Outcome.REFUSED)]
        assert refusals
        for _, user, peer, _, code, scope_id, current, maximum in refusals:
            assert code in (30010, 30014)
            assert scope_id == (user if code == 30010 else peer)
            assert scope_id in hubs
            assert (current, maximum) == (20, 20)

        # Each pair's adds and removals alternate: what is left is added minus removed.
        changes: Counter[frozenset[str]] = Counter()
        for action, user, peer, outcome, *_ in records:
            if outcome == str(Outcome.ADDED):
                changes[frozenset((user, peer))] += 1
            elif outcome == str(Outcome.REMOVED):
                assert action == "remove"
                changes[frozenset((user, peer))] -= 1
        linked = {frozenset(pair) for pair in friends}
        for pair in {frozenset(p) for p in hub_pairs + ring_pairs}:
            assert changes[pair] == (1 if pair in linked else 0), sorted(pair)
        assert linked <= {frozenset(p) for p in hub_pairs + ring_pairs}
    finally:
        engine.close()
        forget(client, app)


# -- 3. one user joined and put into new groups by four workers at once ----------------------------


def test_groups_per_user_race_stops_at_the_override(real_url: str) -> None:
    app, user = "race-joins", "joiner"
    client = real_client_or_skip(real_url)
    engine = Limiter.from_settings(Settings(redis_url=real_url, cache_seconds=0))
    try:
        owners = [f"o{i:02d}" for i in range(12)]
        creators = [f"c{i:02d}" for i in range(WORKERS * 3)]
        everyone = (user, *owners, *creators)
        assert engine.register_users(app, everyone).added == everyone
        engine.set_override(app, "groups_per_user", 5)
        assert engine.limits(app).app["groups_per_user"].value == 5
        existing = [f"g{i:02d}" for i in range(12)]
        for group, owner in zip(existing, owners, strict=True):
            assert engine.create_group(app, group, "Public", owner).members == 1

        plans = []
        for index in range(WORKERS):
            steps = [("add", group, "") for group in existing]
            mine = creators[index * 3 : index * 3 + 3]
            steps += [("create", f"n{index}-{n}", creator) for n, creator in enumerate(mine)]
            random.Random(2000 + index).shuffle(steps)
            plans.append((user, steps))
        records = [
            record
            for worker in race(_groups_per_user_job, app, plans, real_url)
            for record in worker
        ]
        assert len(records) == WORKERS * 15

        keys = keys_of(engine, app)
        members = assert_memberships_consistent(client, keys)
        counted = relation_count(client, keys, "joined", user)
        assert counted == 5
        holding = {group for group, member in members if member == user}
        assert len(holding) == counted
        joined = stored_pairs(client, keys, "joined")
        assert holding == {group for member, group in joined if member == user}
        assert engine.user_usage(app, user).groups == 5

        joins = {record[1] for record in records if record[2] in (str(Outcome.ADDED), "added")}
        assert joins == holding  # every seat taken was reported as taken, once
        assert sum(record[2] in (str(Outcome.ADDED), "added") for record in records) == 5
        for action, group, outcome, code, scope_id, current, maximum in records:
            if outcome in (str(Outcome.REFUSED), "refused"):
                assert (code, scope_id, current, maximum) == (10037, user, 5, 5), group
            elif outcome == str(Outcome.ALREADY):
                assert action == "add"
                assert group in holding
        # a refused creation left nothing behind; an accepted one holds its creator and user
        created = {record[1] for record in records if record[0] == "create"}
        made = {record[1] for record in records if record[0] == "create" and record[2] == "added"}
        assert set(client.hkeys(keys.groups)) == set(existing) | made
        for group in created - made:
            assert engine.group_usage(app, group) is None
            assert relation_count(client, keys, "members", group) == 0
        for group in made:
            assert relation_count(client, keys, "members", group) == 2
        for creator in creators:
            assert relation_count(client, keys, "joined", creator) <= 1
    finally:
        engine.close()
        forget(client, app)


# -- 4. accounts deleted while other workers relate them -------------------------------------------
#
# Accounts first (``require_registered``, the default): every related id is a registered
# account. Each worker deletes its share of the victims at random points of its run while all
# of them befriend victims, add them to groups and create groups with them, so deletions land
# between relations being decided. Every call is timed on the one monotonic clock all the
# processes share, to check each answer against the deletion it raced.

ANCHORS = tuple(f"a{i:02d}" for i in range(12))  # never deleted
VICTIMS = tuple(f"v{i:02d}" for i in range(40))  # each deleted once, by one worker
ACCOUNT_GROUPS = tuple(f"g{i}" for i in range(6))  # made by ANCHORS[i]; never destroyed
REFUSED_REQUESTER = "requester not registered"


def _accounts_job(engine: Limiter, app: str, plan: Any) -> list[tuple[Any, ...]]:
    """Run the steps in order; record (started, ended, action, what was asked, the answer)."""
    records: list[tuple[Any, ...]] = []
    for action, *asked in plan:
        started = time.monotonic()
        answer: Any
        if action == "delete":
            (deleted,) = engine.delete_users(app, asked).users
            released = (deleted.friendships_released, deleted.memberships_released)
            answer = (deleted.registered, *released)
        elif action == "befriend":
            user, peer, both_ways = asked
            try:
                item = engine.add_friends(app, user, [peer], both_ways=both_ways).item(peer)
            except NotRegistered as error:
                answer = (REFUSED_REQUESTER, error.accounts)
            else:
                assert isinstance(item, FriendItem)
                answer = (str(item.outcome), (item.requester_side, item.peer_side))
        elif action == "join":
            group, users, all_or_nothing = asked
            try:
                result = engine.add_members(app, group, users, all_or_nothing=all_or_nothing)
            except NotRegistered as error:
                answer = (None, error.accounts)
            else:
                answer = (tuple((item.id, str(item.outcome)) for item in result.items), ())
        else:
            group, owner, members = asked
            try:
                created = engine.create_group(app, group, "Public", owner, members)
            except NotRegistered as error:
                answer = (False, error.accounts)
            else:
                assert created.members == 1 + len(members)
                answer = (True, ())
        records.append((started, time.monotonic(), action, tuple(asked), answer))
    return records


def _accounts_plan(index: int) -> list[tuple[Any, ...]]:
    """Worker ``index``'s steps: the deletion of its share of the victims, at random points
    among 160 attempts to relate anyone (victims most of the time) to anyone."""
    rng = random.Random(7000 + index)
    steps: list[tuple[Any, ...]] = [("delete", victim) for victim in VICTIMS[index::WORKERS]]
    everyone = (*ANCHORS, *VICTIMS)
    for n in range(160):
        victim, anchor = rng.choice(VICTIMS), rng.choice(ANCHORS)
        kind = rng.choices(("befriend", "anchors", "join", "create"), (4, 1, 3, 2))[0]
        if kind == "befriend":  # either side asks; single-way sometimes
            user, peer = (victim, anchor) if rng.random() < 0.5 else (anchor, victim)
            steps.append(("befriend", user, peer, rng.random() < 0.7))
        elif kind == "anchors":  # relations no deletion may touch
            user, peer = rng.sample(ANCHORS, 2)
            steps.append(("befriend", user, peer, True))
        elif kind == "join":
            users = rng.choice(([victim], [anchor, victim], rng.sample(VICTIMS, 2)))
            steps.append(("join", rng.choice(ACCOUNT_GROUPS), users, rng.random() < 0.5))
        else:
            owner, *members = rng.sample((victim, anchor, *rng.sample(everyone, 2)), 3)
            members = list(dict.fromkeys(m for m in members if m != owner))
            steps.append(("create", f"w{index}-n{n}", owner, members))
    rng.shuffle(steps)
    return steps


def related_ids(client: redis.Redis, keys: AppKeys) -> set[str]:
    """Every user id a stored relation names, on either side, read from the relation keys."""
    found: set[str] = set()
    for name in ("friends", "friended_by"):
        found |= {user for pair in stored_pairs(client, keys, name) for user in pair}
    found |= {user for _, user in stored_pairs(client, keys, "members")}
    for name in ("joined", "joined_free"):
        found |= {user for user, _ in stored_pairs(client, keys, name)}
    return found


class _Ledger:
    """What the answers say was related, checked against what each worker knew was deleted
    and against when each deletion ran."""

    def __init__(self, deletions: dict[str, tuple[float, float]]) -> None:
        self.deletions = deletions  # victim -> (started, ended) of the call that deleted it
        self.entries: Counter[str] = Counter()  # friend-list entries made, per victim
        self.memberships: Counter[str] = Counter()  # memberships made, per victim
        self.friends: set[tuple[str, str]] = set()  # entries between anchors: must stay
        self.members = set(zip(ACCOUNT_GROUPS, ANCHORS[: len(ACCOUNT_GROUPS)], strict=True))
        self.groups = set(ACCOUNT_GROUPS)
        self.refused = Counter[str]()  # "not registered" answers, per victim
        self.gone: set[str] = set()  # the current worker's victims known deleted

    def related(self, started: float, ids: Sequence[str]) -> None:
        """A relation of ``ids`` made by a call that began at ``started``: its victims were
        accounts when the script ran, so it began before their deletion ended."""
        for user in ids:
            assert user not in self.gone, f"{user} related after this worker saw it deleted"
            if user in self.deletions:
                assert started < self.deletions[user][1], f"{user} related after its deletion"

    def strangers(self, ended: float, asked: Sequence[str], named: Sequence[str]) -> None:
        """``named``: the ids of ``asked`` a call found not registered (ended at ``ended``):
        only victims, only once their deletion began, and every one this worker knew gone."""
        assert set(named) <= set(asked) & set(VICTIMS), (asked, named)
        assert self.gone & set(asked) <= set(named), (asked, named, self.gone)
        for user in named:
            assert ended > self.deletions[user][0], f"{user} not registered before its deletion"
            self.refused[user] += 1
        self.gone |= set(named)

    def record(self, started: float, ended: float, action: str, asked: Any, answer: Any) -> None:
        if action == "delete":
            (user,) = asked
            self.gone.add(user)
        elif action == "befriend":
            self._befriend(started, ended, asked, answer)
        elif action == "join":
            group, users, all_or_nothing = asked
            items, named = answer
            if items is None:  # all or nothing: NotRegistered, nothing added
                assert all_or_nothing and named
                self.strangers(ended, users, named)
                return
            named = [user for user, outcome in items if outcome == Outcome.NOT_REGISTERED]
            assert not (all_or_nothing and named)
            self.strangers(ended, users, named)
            for user, outcome in items:
                assert outcome in (Outcome.ADDED, Outcome.ALREADY, Outcome.NOT_REGISTERED)
                if outcome != Outcome.NOT_REGISTERED:
                    self.related(started, [user])
                if outcome == Outcome.ADDED:
                    self._joined(group, user)
        else:
            group, owner, members = asked
            made, named = answer
            people = (owner, *members)
            if not made:
                assert named
                self.strangers(ended, people, named)
                return
            self.related(started, people)
            self.groups.add(group)
            for user in people:
                self._joined(group, user)

    def _befriend(self, started: float, ended: float, asked: Any, answer: Any) -> None:
        user, peer, _ = asked
        outcome, sides = answer
        if outcome == REFUSED_REQUESTER:  # raised before any peer was looked at
            assert sides == (user,)
            self.strangers(ended, [user], [user])
            return
        if outcome == Outcome.NOT_REGISTERED:
            self.related(started, [user])
            self.strangers(ended, [user, peer], [peer])
            return
        assert outcome in (Outcome.ADDED, Outcome.ALREADY), (asked, answer)
        self.related(started, [user, peer])
        made = [(user, peer)] if sides[0] else []
        made += [(peer, user)] if sides[1] else []
        assert (outcome == Outcome.ADDED) == bool(made)
        for entry in made:
            victims = [u for u in entry if u in self.deletions]
            self.entries.update(victims)
            if not victims:
                self.friends.add(entry)

    def _joined(self, group: str, user: str) -> None:
        if user in self.deletions:
            self.memberships[user] += 1
        else:
            self.members.add((group, user))


def test_an_account_deleted_while_it_is_related_keeps_no_relation(real_url: str) -> None:
    app = "race-accounts"
    client = real_client_or_skip(real_url)
    engine = Limiter.from_settings(Settings(redis_url=real_url, cache_seconds=0))
    try:
        assert engine.settings.require_registered
        everyone = (*ANCHORS, *VICTIMS)
        assert engine.register_users(app, everyone).added == everyone
        for name in ("friends", "groups_per_user", "group_members"):  # no limit refuses
            engine.set_override(app, name, None)
        for group, owner in zip(ACCOUNT_GROUPS, ANCHORS[: len(ACCOUNT_GROUPS)], strict=True):
            engine.create_group(app, group, "Public", owner)

        plans = [_accounts_plan(index) for index in range(WORKERS)]
        workers = race(_accounts_job, app, plans, real_url)
        assert [len(records) for records in workers] == [len(plan) for plan in plans]
        deletions: dict[str, tuple[float, float]] = {}
        released: dict[str, tuple[int, int]] = {}
        for records in workers:
            for started, ended, action, (user, *_), answer in records:
                if action == "delete":
                    assert user not in deletions
                    deletions[user] = (started, ended)
                    registered, *counts = answer
                    assert registered  # it was an account until this call
                    released[user] = (counts[0], counts[1])
        assert set(deletions) == set(VICTIMS)

        ledger = _Ledger(deletions)
        for records in workers:
            ledger.gone = set()
            for record in records:
                ledger.record(*record)
        # the deletion released exactly what had been related to the victim before it, and
        # no relation was made after it
        for victim in VICTIMS:
            made = (ledger.entries[victim], ledger.memberships[victim])
            assert released[victim] == made, victim
        assert sum(ledger.entries.values()) > 0 and sum(ledger.memberships.values()) > 0
        # they really raced: victims related by one call and found deleted by another
        raced_victims = [v for v in VICTIMS if ledger.refused[v] and sum(released[v])]
        assert len(raced_victims) >= 5, raced_victims

        # from the keys: every related id is an account; a deleted one holds nothing
        keys = keys_of(engine, app)
        users = set(client.smembers(keys.users))
        assert users == set(ANCHORS)
        assert related_ids(client, keys) <= users
        for victim in VICTIMS:
            for name in ("friends", "friended_by", "joined", "joined_free"):
                assert not client.exists(relation_key(client, keys, name, victim)), victim
        assert not client.exists(keys.strays)
        assert assert_friends_consistent(client, keys) == ledger.friends
        assert assert_memberships_consistent(client, keys) == ledger.members
        assert set(client.hkeys(keys.groups)) == ledger.groups
        report = check_app(engine, client, app)
        assert report.violations == (), "\n".join(map(str, report.violations))
    finally:
        engine.close()
        forget(client, app)
