"""One decision's script on the new relation layout next to the same decision on 0.1's (issue 14,
"single-call decision cost not worse"): each script called bare, with its real arguments, on
the same client, on apps holding the same relations.

    python -m bench.layouts [--url redis://127.0.0.1:6379/14] [--smoke]

0.1 kept every relation as an entry "a\\0b" of a few app-wide sorted sets; its scripts
(``bench/layout_0_1/``, as that release shipped them) are the baseline. Today's are the
package's own, with accounts first on. Both apps hold USERS users with about 20 friends each
and groups of GROUP_SIZE; every timed call is a new addition (an existing user joins another
existing group; two existing users become friends). Rounds alternate the layouts (the order
flips every round); a ratio is today's throughput over 0.1's in the same round, and the
figure gives the median round.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import redis

from bench.common import Figure, Timing, cli, client, enroll, median_of, time_sync
from limiter.store import scripts
from limiter.store.keys import KeyLayout, entity
from limiter.store.redis import script_sources

OLD, NEW = "0.1 (app-wide sorted sets)", "per-entity hashes"
APPS = {OLD: "bench-layout-old", NEW: "bench-layout-new"}
OPERATIONS = ("add_members", "add_friends")
FRIENDS_EACH_WAY = 10  # user n befriends n+1 .. n+10 both ways: about 20 friends each
GROUP_SIZE = 200
# Limits the timed calls stay under: every call is an addition, none is refused.
GROUPS_PER_USER, FRIENDS = 10_000, 10_000
TARGET = 1.0
BASELINE = Path(__file__).parent / "layout_0_1"


def user(n: int) -> str:
    return f"u{n:07d}"


def group(n: int) -> str:
    return f"g{n:06d}"


def relations(users: int) -> Iterator[tuple[str, str, str]]:
    """(namespace, subject, other end) of every stored relation: both-way friendships and
    one group per user (the first member of each group its owner)."""
    for n in range(users):
        for step in range(1, FRIENDS_EACH_WAY + 1):
            peer = user((n + step) % users)
            yield "friends", user(n), peer
            yield "friends", peer, user(n)
            yield "friended_by", peer, user(n)
            yield "friended_by", user(n), peer
        yield "members", group(n // GROUP_SIZE), user(n)
        yield "joined", user(n), group(n // GROUP_SIZE)


def load(redis_client: redis.Redis, users: int) -> None:
    """The same relations in both layouts, pipelined in straight (as the scripts leave them)."""
    old, new = (KeyLayout("limiter").app(APPS[name]) for name in (OLD, NEW))
    pipe = redis_client.pipeline(transaction=False)
    for number, (namespace, a, b) in enumerate(relations(users)):
        pipe.zadd(getattr(old, namespace), {f"{a}\0{b}": 0})
        pipe.hset(entity(getattr(new, namespace), "0", a), b, "")
        if number % 5_000 == 4_999:
            pipe.execute()
    for keys in (old, new):
        pipe.hset(keys.groups, mapping={group(g): "Public" for g in range(users // GROUP_SIZE)})
    pipe.execute()
    enroll(redis_client, new, [user(n) for n in range(users)])


def old_source(name: str) -> str:
    lib = (BASELINE / "lib.lua").read_text(encoding="utf-8")
    return lib + "\n" + (BASELINE / f"{name}.lua").read_text(encoding="utf-8")


Sync = Callable[[int], object]


def calls(redis_client: redis.Redis, users: int) -> dict[tuple[str, str], Callable[[int], Sync]]:
    """(layout, operation) -> given a shift (distinct per measurement, so no pair is asked for
    twice), the timed call on the i-th user."""
    types = scripts.group_types([("Public", GROUP_SIZE * 1000, True)])
    groups = users // GROUP_SIZE
    sha = {
        (layout, name): redis_client.script_load(
            old_source(name) if layout == OLD else script_sources()[name]
        )
        for layout in (OLD, NEW)
        for name in OPERATIONS
    }
    keys = {name: KeyLayout("limiter").app(app) for name, app in APPS.items()}

    def spread(i: int) -> int:
        return i * 7919 % users  # distinct existing users, spread over the app

    def members_keys(layout: str) -> tuple[str, ...]:
        k = keys[layout]
        old = (k.groups, k.members, k.joined, k.joined_free)
        return old if layout == OLD else (*old, k.users, k.strays, k.gen)

    def friends_keys(layout: str) -> tuple[str, ...]:
        k = keys[layout]
        old = (k.friends, k.friended_by)
        return old if layout == OLD else (*old, k.users, k.strays, k.gen)

    def flags(layout: str, *values: bool) -> str:
        return scripts.flags(*values) if layout == OLD else scripts.flags(*values, True)

    def add_members(layout: str) -> Callable[[int], Sync]:
        script_keys, sha_of = members_keys(layout), sha[(layout, "add_members")]
        head = (flags(layout, False, False, False), "", types)

        def at(shift: int) -> Sync:
            def call(i: int) -> Any:
                who = spread(i)
                where = group((who // GROUP_SIZE + shift) % groups)
                args = (head[0], where, head[1], head[2], user(who), GROUPS_PER_USER)
                return redis_client.evalsha(sha_of, len(script_keys), *script_keys, *args)

            return call

        return at

    def add_friends(layout: str) -> Callable[[int], Sync]:
        script_keys, sha_of = friends_keys(layout), sha[(layout, "add_friends")]
        head = flags(layout, True, False, False)

        def at(shift: int) -> Sync:
            def call(i: int) -> Any:
                who = spread(i)
                peer = user((who + shift) % users)
                args = (head, user(who), FRIENDS, peer, FRIENDS)
                return redis_client.evalsha(sha_of, len(script_keys), *script_keys, *args)

            return call

        return at

    made = {"add_members": add_members, "add_friends": add_friends}
    return {(layout, name): made[name](layout) for layout in (OLD, NEW) for name in OPERATIONS}


Rounds = dict[tuple[str, str], list[Timing]]


def measure(redis_client: redis.Redis, users: int, ops: int, rounds: int) -> Rounds:
    """Rounds of every (layout, operation), the layouts back to back for each operation;
    both layouts of one measurement pair get the same shift, so they make the same relations."""
    timed = calls(redis_client, users)
    shifts = count(FRIENDS_EACH_WAY + 1)
    found: Rounds = {key: [] for key in timed}
    for number in range(rounds):
        order = (OLD, NEW) if number % 2 == 0 else (NEW, OLD)
        for name in OPERATIONS:
            shift = next(shifts)
            for layout in order:
                found[(layout, name)].append(time_sync(timed[(layout, name)](shift), ops))
    return found


def run(url: str, smoke: bool) -> Figure:
    users, ops, rounds = (2_000, 200, 1) if smoke else (20_000, 2_000, 7)
    figure = Figure(
        "layouts",
        "One decision's script on today's relation layout next to 0.1's (called bare)",
        ["call", "layout", "ops/s", "p50 (us)", "p99 (us)", "x 0.1"],
    )
    redis_client = client(url)
    load(redis_client, users)
    found = measure(redis_client, users, ops, rounds)
    for name in OPERATIONS:
        old, new = found[(OLD, name)], found[(NEW, name)]
        ratio = statistics.median(n.ops_per_s / o.ops_per_s for n, o in zip(new, old, strict=True))
        for layout, timings, shown in ((OLD, old, 1.0), (NEW, new, ratio)):
            typical = median_of(timings)
            figure.rows.append(
                [name, layout, typical.ops_per_s, typical.p50_us, typical.p99_us, shown]
            )
        figure.at_least(f"{name}: today's script / 0.1's", ratio, TARGET)
    client(url).close()  # leave the database empty
    figure.notes += [
        f"{users:,} users with about {2 * FRIENDS_EACH_WAY} friends each and groups of "
        f"{GROUP_SIZE}, in both layouts; {rounds} rounds of {ops:,} calls per layout and "
        "operation, one blocking client; each ratio is the median of the per-round ratios.",
        "Each call is EVALSHA of the script with the arguments the engine sends (today's "
        "also carries the users, strays and gen keys and the accounts-first flag: it checks "
        "that the user is a registered account and reads the app's generation).",
    ]
    return figure


if __name__ == "__main__":
    cli(run)
