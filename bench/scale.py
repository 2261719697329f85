"""Flat cost as an app grows (issue 7, item 5): the decision cost with 10^3 .. 10^6 users
(and groups, friendships, memberships, today's logins in proportion) already in the app.

    python -m bench.scale [--url redis://127.0.0.1:6379/14] [--smoke]

The app's data is written straight into the key layout of ``limiter.store.keys`` (generation
"0", one hash per user and per group) with pipelined commands (what the scripts would have
written, much faster), growing from one size to the next; at each size the decisions are timed
against a bare EVALSHA as in ``bench.decisions``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from itertools import count

import redis

from bench.common import Figure, cli, client, enroll, keys_of, median_of
from bench.decisions import BASELINES, OPERATIONS, TRIVIAL, Sync, interleaved, ratios, settings
from limiter import Limiter, SyncStore
from limiter.store.keys import AppKeys, entity

APP = "bench-scale"
SIZES = (1_000, 10_000, 100_000, 1_000_000)
GROUP_SIZE = 10  # members per loaded group: users / 10 groups
ENTRIES_PER_COMMAND = 1_000
COMMANDS_PER_ROUND_TRIP = 20_000
TARGET = 0.95  # issue 14: every decision at 10^6 users within 0.95x of its cost at 10^3


def user(n: int) -> str:
    return f"u{n:07d}"


def group(n: int) -> str:
    return f"g{n:06d}"


def load(redis_client: redis.Redis, keys: AppKeys, day_key: str, start: int, stop: int) -> None:
    """Users ``start`` .. ``stop`` - 1 as the scripts would leave them: registered, logged in
    today, befriended both ways in pairs (2m, 2m + 1), in groups of ``GROUP_SIZE`` (the first
    one the owner)."""
    pipe = redis_client.pipeline(transaction=False)

    def flush_if_full() -> None:
        if len(pipe) >= COMMANDS_PER_ROUND_TRIP:
            pipe.execute()

    for low in range(start, stop, ENTRIES_PER_COMMAND):
        ids = range(low, min(stop, low + ENTRIES_PER_COMMAND))
        names = [user(n) for n in ids]
        pipe.sadd(keys.users, *names)
        pipe.sadd(day_key, *names)
        for n in ids:
            pipe.hset(entity(keys.friends, "0", user(n)), user(n ^ 1), "")
            pipe.hset(entity(keys.friended_by, "0", user(n)), user(n ^ 1), "")
            pipe.hset(entity(keys.joined, "0", user(n)), group(n // GROUP_SIZE), "")
            pipe.hset(entity(keys.members, "0", group(n // GROUP_SIZE)), user(n), "")
        owned = {group(n // GROUP_SIZE): "Public" for n in ids if n % GROUP_SIZE == 0}
        if owned:
            pipe.hset(keys.groups, mapping=owned)
        flush_if_full()
    pipe.execute()


def operations(
    engine: Limiter, size: int, trivial: str, ops: int
) -> dict[str, Callable[[str], Sync]]:
    """The decisions of ``bench.decisions`` on the loaded app's own users and groups: an
    existing user joins another existing group, two existing users become friends, a new
    account registers, an account made before the measurement (untimed) logs in for the
    first time today."""
    redis_client = engine.store.client
    key = keys_of(engine, APP).users
    groups = size // GROUP_SIZE
    # Each measurement moves users by a shift of its own (never 0 or 1), so no (user, group)
    # or friend pair is asked for twice: every call is a new addition.
    shifts = count(2)

    def pick(i: int) -> int:
        return i * 7919 % size  # distinct existing users, spread over the app

    def add_members(tag: str) -> Sync:
        shift = next(shifts)
        return lambda i: engine.add_members(
            APP, group((pick(i) // GROUP_SIZE + shift) % groups), user(pick(i))
        )

    def add_friends(tag: str) -> Sync:
        shift = next(shifts)
        return lambda i: engine.add_friends(APP, user(pick(i)), user((pick(i) + shift) % size))

    def record_login(tag: str) -> Sync:
        enroll(redis_client, keys_of(engine, APP), [f"seen{tag}-{i}" for i in range(ops)])
        return lambda i: engine.record_login(APP, f"seen{tag}-{i}")

    return {
        BASELINES[0]: lambda tag: lambda i: redis_client.evalsha(trivial, 1, key),
        BASELINES[1]: lambda tag: lambda i: redis_client.ping(),
        "add_members": add_members,
        "add_friends": add_friends,
        "register_users": lambda tag: lambda i: engine.register_users(APP, f"new{tag}-{i}"),
        "record_login": record_login,
    }


def run(url: str, smoke: bool) -> Figure:
    sizes, ops, rounds = ((1_000, 10_000), 30, 1) if smoke else (SIZES, 1_000, 5)
    figure = Figure(
        "scale",
        "Decision cost as the app grows",
        ["users in the app", "call", "ops/s", "p50 (us)", "p99 (us)", "x EVALSHA"],
    )
    engine = Limiter(SyncStore(client(url)), settings=settings(url))
    engine.set_edition(APP, "pro", purchased_on=engine.now().date())  # no limit is reached
    redis_client = engine.store.client
    keys = keys_of(engine, APP)
    day_key = keys.dau(engine.today())
    trivial = redis_client.script_load(TRIVIAL)
    relative: dict[str, dict[int, float]] = {name: {} for name in OPERATIONS}
    loaded = 0
    for size in sizes:
        load(redis_client, keys, day_key, loaded, size)
        loaded = size
        found = interleaved(operations(engine, size, trivial, ops), ops, rounds)
        for name, timings in found.items():
            ratio = statistics.median(ratios(found, name))
            typical = median_of(timings)
            figure.rows.append(
                [size, name, typical.ops_per_s, typical.p50_us, typical.p99_us, ratio]
            )
            if name in OPERATIONS:
                relative[name][size] = ratio
    engine.close()
    client(url).close()  # leave the database empty
    smallest, largest = sizes[0], sizes[-1]
    for name in OPERATIONS:
        flat = relative[name][largest] / relative[name][smallest]
        figure.at_least(f"{name}: {largest:,} users / {smallest:,}", flat, TARGET)
    figure.notes += [
        f"At each size the app holds that many users, each registered, logged in today and "
        f"befriended both ways with one other, and size / {GROUP_SIZE} groups of "
        f"{GROUP_SIZE} members; the data grows in place from one size to the next.",
        "A target compares an operation's throughput relative to the bare EVALSHA of the same "
        "rounds at the largest size with the same at the smallest: 1.0 is perfectly flat "
        "(the machine's drift between sizes cancels out).",
        "Every decision reads and writes the per-entity hashes of the users and groups it "
        "names (HLEN, HEXISTS, HSET) and the app's users set (SISMEMBER, SADD): constant in the "
        "app's size, so what is left between sizes is the server's memory no longer sitting in "
        "the CPU caches as the data set grows (the p50 column shows how much in this run).",
        f"{rounds} rounds of {ops} calls per size.",
    ]
    return figure


if __name__ == "__main__":
    cli(run)
