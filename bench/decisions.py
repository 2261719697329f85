"""Decision cost (issue 7, item 2): each engine decision next to a bare ``EVALSHA`` of a trivial
script and a ``PING`` on the same client, blocking and asyncio (1 task, 50 concurrent tasks).

    python -m bench.decisions [--url redis://127.0.0.1:6379/14] [--smoke]

Every measurement of a round runs back to back with the others of that round (the order flips
every round), so a ratio compares figures taken moments apart on this shared machine; the
table gives the median round of each, and each ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import Any

import redis.asyncio as aioredis

from bench.common import (
    Figure,
    Timing,
    cli,
    client,
    enroll,
    keys_of,
    median_of,
    time_async,
    time_sync,
)
from limiter import AsyncLimiter, AsyncStore, Limiter, Settings, SyncStore

APP = "bench-decisions"
GROUP = "bench-group"
TRIVIAL = "return 1"
OPERATIONS = ("add_members", "add_friends", "register_users", "record_login")
BASELINES = ("EVALSHA (trivial)", "PING")
TARGET = 0.85
CONCURRENCY = 50


@dataclass(frozen=True)
class Mode:
    """A way of driving the client: blocking, or asyncio with ``tasks`` concurrent tasks."""

    name: str
    tasks: int  # 0 = blocking
    ops: int  # per measurement


def modes(smoke: bool) -> tuple[Mode, ...]:
    scale = 1 if smoke else 40
    return (
        Mode("sync", 0, 30 * scale),
        Mode("async, 1 task", 1, 15 * scale),
        Mode(f"async, {CONCURRENCY} tasks", CONCURRENCY, 30 * scale),
    )


def settings(url: str) -> Settings:
    """The shipped defaults (plan cached for 1 s), on the benchmark's Redis."""
    return Settings(redis_url=url, cache_seconds=1.0, policies={}, outage="closed")


def prepare(url: str) -> None:
    """A pro app with one group whose size is not limited (an override), so that every timed
    call is a real addition: a new member, a new friendship, a new account, a first login."""
    engine = Limiter(SyncStore(client(url)), settings=settings(url))
    engine.set_edition(APP, "pro", purchased_on=engine.now().date())
    engine.set_override(APP, "group_members", None, group=GROUP)
    enroll(engine.store.client, keys_of(engine, APP), ["owner"])
    engine.create_group(APP, GROUP, "Public", owner="owner")
    engine.close()


Sync = Callable[[int], object]


def operations_of(
    engine: Limiter | AsyncLimiter, trivial: str, url: str, ops: int
) -> dict[str, Callable[[str], Callable[[int], Any]]]:
    """Each measured call (blocking, or a coroutine with the async engine), given a tag that
    keeps its ids unused by earlier measurements. The ids a measurement relates or logs in
    are registered accounts (made before it, untimed); register_users' are new."""
    redis: Any = engine.store.client
    keys = keys_of(engine, APP)
    setup = client(url, flush=False)

    def accounts(tag: str, *kinds: str) -> None:
        enroll(setup, keys, [f"{kind}{tag}-{i}" for kind in kinds for i in range(ops)])

    def add_members(tag: str) -> Callable[[int], Any]:
        accounts(tag, "m")
        return lambda i: engine.add_members(APP, GROUP, f"m{tag}-{i}")

    def add_friends(tag: str) -> Callable[[int], Any]:
        accounts(tag, "a", "b")
        return lambda i: engine.add_friends(APP, f"a{tag}-{i}", f"b{tag}-{i}")

    def record_login(tag: str) -> Callable[[int], Any]:
        accounts(tag, "l")
        return lambda i: engine.record_login(APP, f"l{tag}-{i}")

    return {
        "EVALSHA (trivial)": lambda tag: lambda i: redis.evalsha(trivial, 1, keys.users),
        "PING": lambda tag: lambda i: redis.ping(),
        "add_members": add_members,
        "add_friends": add_friends,
        "register_users": lambda tag: lambda i: engine.register_users(APP, f"r{tag}-{i}"),
        "record_login": record_login,
    }


def order(round_number: int) -> list[str]:
    """EVALSHA runs before, between and after the operations (then PING); every other round
    runs in reverse."""
    names = [BASELINES[0]]
    for name in OPERATIONS:
        names += [name, BASELINES[0]]
    names.append(BASELINES[1])
    return names if round_number % 2 == 0 else names[::-1]


Rounds = dict[str, list[Timing]]


def interleaved(operations: dict[str, Callable[[str], Sync]], ops: int, rounds: int) -> Rounds:
    """Blocking measurements of ``operations`` (named as in :func:`order`), ``rounds`` rounds
    of ``ops`` calls each; every measurement gets a tag of its own for its ids."""
    tags = count()
    found: Rounds = {name: [] for name in operations}
    for round_number in range(rounds):
        for name in order(round_number):
            found[name].append(time_sync(operations[name](f"s{next(tags)}"), ops))
    return found


def measure_sync(url: str, mode: Mode, rounds: int) -> Rounds:
    engine = Limiter(SyncStore(client(url, flush=False)), settings=settings(url))
    operations = operations_of(engine, engine.store.client.script_load(TRIVIAL), url, mode.ops)
    found = interleaved(operations, mode.ops, rounds)
    engine.close()
    return found


async def measure_async(url: str, mode: Mode, rounds: int) -> Rounds:
    store = AsyncStore(aioredis.Redis.from_url(url, decode_responses=True))
    engine = AsyncLimiter(store, settings=settings(url))
    trivial = await store.client.script_load(TRIVIAL)
    operations = operations_of(engine, trivial, url, mode.ops)
    found: Rounds = {name: [] for name in operations}
    tags = count()
    for round_number in range(rounds):
        for name in order(round_number):
            operation = operations[name](f"a{mode.tasks}-{next(tags)}")
            found[name].append(await time_async(operation, mode.ops, mode.tasks))
    await engine.aclose()
    return found


def ratios(found: Rounds, name: str) -> list[float]:
    """Per round: the operation's throughput over the round's bare EVALSHA throughput (the
    median of that round's EVALSHA runs)."""
    evalsha = found[BASELINES[0]]
    per_round = len(evalsha) // len(found[name])
    return [
        timing.ops_per_s
        / statistics.median(t.ops_per_s for t in evalsha[n * per_round : (n + 1) * per_round])
        for n, timing in enumerate(found[name])
    ]


def run(url: str, smoke: bool) -> Figure:
    rounds = 1 if smoke else 7
    figure = Figure(
        "decisions",
        "Decision cost next to a bare EVALSHA on the same client",
        ["mode", "call", "ops/s", "p50 (us)", "p99 (us)", "x EVALSHA"],
    )
    prepare(url)
    for mode in modes(smoke):
        if mode.tasks == 0:
            found = measure_sync(url, mode, rounds)
        else:
            found = asyncio.run(measure_async(url, mode, rounds))
        for name, timings in found.items():
            ratio = statistics.median(ratios(found, name))
            typical = median_of(timings)
            figure.rows.append(
                [mode.name, name, typical.ops_per_s, typical.p50_us, typical.p99_us, ratio]
            )
            if name in OPERATIONS:
                figure.at_least(f"{name}, {mode.name}", ratio, TARGET)
    client(url).close()  # leave the database empty
    figure.notes += [
        f"{rounds} rounds; a measurement is "
        + ", ".join(f"{m.ops} calls {m.name}" for m in modes(smoke))
        + "; EVALSHA runs before, between and after the operations, and an operation's "
        "ratio is taken against the EVALSHAs of its own round (median over the rounds).",
        "The app is on pro (its limits apply, and are checked) with one group's size "
        "overridden to unlimited, so every call adds something new: a member to that growing "
        "group, a both-way friendship between two new users, an account, a first login of "
        "the day. "
        "The plan is cached for 1 s (the default), so about one call a second also reads it.",
        "A decision is one EVALSHA, like the baseline; what separates them, as measured while "
        "writing this benchmark (client CPU time, and the server's INFO commandstats): "
        "redis-py's own path costs about 40-55 us of CPU per call either way; the engine's "
        "Python work (validation, the cached limits, the arguments, the result objects) is "
        "10-15 us alone but about twice that between two blocking round trips (its code and "
        "data run cache-cold); more arguments cost redis-py about 0.5 us each (1 us in "
        "asyncio, which packs in Python); and the script itself runs 10-25 us in Redis where "
        "the trivial one runs 3-5 us (its reads and its two or four sorted-set writes).",
        f"The {CONCURRENCY}-task mode shares one client's connection pool ({CONCURRENCY} "
        "connections); on 2 cores the Python process, not Redis, is the bottleneck.",
        "Why 0.85 is missed: the baseline runs a script that does nothing. A decision's own "
        "script work (10-25 us in Redis) and its longer argument list take most of the gap: "
        "called bare, add_members' script with its real arguments ran at about 0.7-0.8x the "
        "trivial one while this was written, before any engine code; the engine's Python "
        "work takes the rest. What was done: limits resolved once per cached plan and reused until "
        "they could change, keys and flags built once, EVALSHA called directly (redis-py's "
        "Script object only on NOSCRIPT), fewer script arguments: each ratio rose by about "
        "0.13-0.15 (sync add_members from 0.30 to 0.43, measured back to back against a trivial "
        "EVALSHA at 20k/s on a quiet machine). What is left would mean bypassing redis-py's "
        "command path (about 8-12 us per call): it would hide decisions from the tracing "
        "tools that wrap execute_command and re-implement its retries, so it was not done.",
    ]
    return figure


if __name__ == "__main__":
    cli(run)
