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

from limiter import Limiter, Outcome, Refusal, Refused, Settings
from limiter.store.keys import AppKeys
from tests.conftest import forget_app, keys_of, real_client_or_skip
from tests.invariants import relation_count, stored_pairs

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
