"""Memory: Redis bytes per friendship, per group membership, per registered account and per
daily active user (100,000 of each), for one 6,000-member group, and for a month's metering.

    python -m bench.memory [--url redis://127.0.0.1:6379/14] [--smoke]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import redis

from bench.common import Figure, cli, client, enroll, keys_of
from limiter import AccountRecord, FriendRecord, GroupRecord, Limiter, Settings, SyncStore
from limiter.reconcile import Record
from limiter.testing import ManualClock

APP = "1400000043"
BEIJING = timezone(timedelta(hours=8))
DAY = datetime(2026, 11, 26, 12, 0, tzinfo=BEIJING)
GROUP_SIZES = (20, 200)  # memberships in trial-size and pro-size groups
BIG_GROUP = 6000
SMALL_GROUP = 20
BIG_LIST = 3000  # one user's friend list of this many, both ways
ROUNDS = 3  # fills per data set: the used_memory growth reported is their median
FRIEND_KEYS = ("friends", "friended_by")
GROUP_KEYS = ("members", "joined", "groups")
ENGINE_LOGINS = 1000  # DAU: the first logins through the engine's script, the rest pipelined


def user_id(n: int) -> str:
    return f"user-{n:010d}"  # 15 bytes, a typical IM account id


@dataclass(frozen=True)
class Measured:
    """What one data set costs: the exact size of its keys, and the server's growth."""

    encodings: dict[str, str]  # key name (after the app's prefix) -> its encoding
    usage_bytes: int  # MEMORY USAGE <key> SAMPLES 0 of those keys, summed
    used_memory_delta: int  # INFO memory used_memory, after minus before


def measure(engine: Limiter, redis_client: redis.Redis, fill: Callable[[], list[str]]) -> Measured:
    """Fills an emptied database :data:`ROUNDS` times (``fill`` returns the keys it filled):
    the exact size of those keys, and the median growth of the server's ``used_memory`` (other
    clients of a shared server move it too)."""
    deltas = []
    for _ in range(ROUNDS):
        redis_client.flushdb()
        before = int(redis_client.info("memory")["used_memory"])
        keys = [key for key in fill() if redis_client.exists(key)]
        deltas.append(int(redis_client.info("memory")["used_memory"]) - before)
    usage = sum(redis_client.memory_usage(key, samples=0) or 0 for key in keys)
    base = keys_of(engine, APP).base
    encodings: Counter[str] = Counter()
    for key in keys:  # per namespace: "members:0:group-1" counts as "members"
        name = key.removeprefix(base).partition(":")[0]
        encodings[f"{name} {redis_client.object('encoding', key)}"] += 1
    return Measured(dict(encodings), usage, sorted(deltas)[ROUNDS // 2])


def friendships(count: int) -> Iterator[Record]:
    """``count`` both-way friendships: user n befriends the next 1..10 users (in a ring of
    count / 10: about 20 friends each), so 2 x count friend-list entries, each kept twice
    (friends, friended_by); the users are accounts."""
    ring = max(25, count // 10)
    yield from accounts(ring)
    for n in range(count):
        user, step = n % ring, 1 + n // ring
        yield FriendRecord(user_id(user), user_id((user + step) % ring), both_ways=True)


def memberships(count: int, size: int) -> Iterator[Record]:
    """``count`` memberships (owner included) in groups of ``size``; each of count / 20 users
    is in about 20 of them."""
    people = max(size, count // 20)
    yield from accounts(people)
    for g, start in enumerate(range(0, count, size)):
        first = g * 37
        members = [user_id((first + i) % people) for i in range(min(size, count - start))]
        yield GroupRecord(f"group-{g:08d}", "Public", tuple(members[1:]), owner=members[0])


def big_list(count: int) -> Iterator[Record]:
    """One user befriended both ways by ``count`` others (each with that one friend)."""
    yield from accounts(count + 1)
    for n in range(1, count + 1):
        yield FriendRecord(user_id(0), user_id(n), both_ways=True)


def accounts(count: int) -> Iterator[Record]:
    return (AccountRecord(user_id(n)) for n in range(count))


def logins(engine: Limiter, redis_client: redis.Redis, count: int) -> list[str]:
    """``count`` users seen on one day: the first through the engine's script, the rest
    pipelined into the same set (a set's memory does not depend on how it was filled). The
    engine's are registered accounts (accounts first: only theirs count)."""
    first = [user_id(n) for n in range(min(count, ENGINE_LOGINS))]
    enroll(redis_client, keys_of(engine, APP), first)
    for n in range(min(count, ENGINE_LOGINS)):
        engine.record_login(APP, user_id(n))
    day_key = keys_of(engine, APP).dau(DAY.date())
    pipe = redis_client.pipeline(transaction=False)
    for start in range(ENGINE_LOGINS, count, 10_000):
        pipe.sadd(day_key, *(user_id(n) for n in range(start, min(count, start + 10_000))))
    pipe.execute()
    assert redis_client.scard(day_key) == count
    return [day_key]


def month_of_metering(engine: Limiter, clock: ManualClock) -> list[str]:
    """A whole month of daily DAU counts and bandwidth peaks in the metering hash."""
    enroll(engine.store.client, keys_of(engine, APP), ["someone"])
    for day in range(1, 31):
        clock.set(datetime(2026, 11, day, 12, 0, tzinfo=BEIJING))
        engine.record_login(APP, "someone")
        engine.record_bandwidth(APP, "12.5")
    clock.set(DAY)
    return [keys_of(engine, APP).meter("2026-11")]


def run(url: str, smoke: bool) -> Figure:
    count = 2_000 if smoke else 100_000
    redis_client = client(url)
    clock = ManualClock(DAY)
    engine = Limiter(SyncStore(redis_client), settings=Settings(redis_url=url), clock=clock)
    keys = keys_of(engine, APP)

    def reconciled(records: Callable[[], Iterator[Record]], *names: str) -> Callable[[], list[str]]:
        """Loads the records into the app (the keys a reconcile writes), names the keys."""

        def fill() -> list[str]:
            engine.reconcile(APP, records())
            found = redis_client.scan_iter(match=keys.base + "*", count=10_000)
            return [key for key in found if key.removeprefix(keys.base).partition(":")[0] in names]

        return fill

    cases: list[tuple[str, int, Callable[[], list[str]]]] = [
        (
            "friendship, about 20 friends per user (both ways: 2 list entries, each kept in "
            "friends and friended_by)",
            count,
            reconciled(lambda: friendships(count), *FRIEND_KEYS),
        ),
        (
            f"friendship: one {BIG_LIST:,}-friend list (both ways)",
            BIG_LIST,
            reconciled(lambda: big_list(BIG_LIST), *FRIEND_KEYS),
        ),
        *(
            (
                f"group membership, groups of {size}, about 20 groups per user (members and "
                "joined, + the groups hash)",
                count,
                reconciled(lambda size=size: memberships(count, size), *GROUP_KEYS),  # type: ignore[misc]
            )
            for size in GROUP_SIZES
        ),
        (
            f"one {BIG_GROUP:,}-member group, alone in its app",
            BIG_GROUP,
            reconciled(lambda: memberships(BIG_GROUP, BIG_GROUP), *GROUP_KEYS),
        ),
        (
            f"one {SMALL_GROUP}-member group, alone in its app",
            SMALL_GROUP,
            reconciled(lambda: memberships(SMALL_GROUP, SMALL_GROUP), *GROUP_KEYS),
        ),
        ("registered account", count, reconciled(lambda: accounts(count), "users")),
        (
            "daily active user (one day's set)",
            count,
            lambda: logins(engine, redis_client, count),
        ),
        ("a month of metering (30 days)", 30, lambda: month_of_metering(engine, clock)),
    ]
    figure = Figure(
        "memory",
        f"Memory: Redis bytes per item ({count:,} of each)",
        [
            "what",
            "items",
            "keys (encoding)",
            "MEMORY USAGE B",
            "B per item",
            "used_memory delta B",
            "delta per item",
        ],
    )
    for what, items, fill in cases:
        measured = measure(engine, redis_client, fill)
        figure.rows.append(
            [
                what,
                items,
                ", ".join(f"{k} ({e})" for k, e in measured.encodings.items()),
                measured.usage_bytes,
                measured.usage_bytes / items,
                measured.used_memory_delta,
                measured.used_memory_delta / items,
            ]
        )
    redis_client.flushdb()
    hashtable, listpack = (row[4] for row in figure.rows if "alone" in row[0])
    config = {**redis_client.config_get("hash-max-*"), **redis_client.config_get("set-max-*")}
    settings = ", ".join(f"{name} {value}" for name, value in sorted(config.items()))
    figure.notes += [
        "Ids: users `user-NNNNNNNNNN` (15 bytes), groups `group-NNNNNNNN` (14 bytes). Each "
        "relation is a field (the other id, value empty) of one hash per user or group "
        "(limiter/store/keys.py); keys (encoding) counts the keys per namespace.",
        "MEMORY USAGE ... SAMPLES 0 is exact (every element), for the keys named; the "
        "used_memory delta is the whole server's growth while the data was written (it also "
        "counts the engine's small keys, and on a shared server other clients' writes).",
        "Encodings: a hash stays a compact listpack (one allocation, fields packed) while it "
        "has at most hash-max-listpack-entries fields of at most hash-max-listpack-value "
        "bytes; past either it becomes a hash table, which costs more per field "
        f"({hashtable / listpack:.1f} times the bytes per membership here: the "
        f"{BIG_GROUP:,}-member group against the {SMALL_GROUP}-member one). A user's lists and "
        "a group's members are separate keys, so only the big ones pay the hash-table rate; "
        f"a set of non-integer ids (accounts, a day's DAU) is a hash table. This server: "
        f"{settings}.",
    ]
    redis_client.close()
    return figure


if __name__ == "__main__":
    cli(run)
