"""What every benchmark shares: the Redis it uses, timing, the figure it returns, its command line.

Each ``bench/<name>.py`` defines ``run(url: str, smoke: bool) -> Figure`` and ends with
``if __name__ == "__main__": cli(run)``; ``python -m bench.<name>`` prints its table and writes
``bench/results/<name>.json``. ``smoke=True`` is a seconds-long run of the same code (the test
suite runs it so the scripts cannot rot); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from limiter.store.keys import AppKeys, KeyLayout

URL = os.environ.get("LIMITER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
RESULTS = Path(__file__).parent / "results"


def keys_of(engine: Any, app: str) -> AppKeys:
    """The Redis keys of ``app`` under the engine's key prefix (a benchmark plants data)."""
    return KeyLayout(engine.settings.key_prefix).app(app)


def enroll(setup: Any, keys: AppKeys, ids: list[str]) -> None:
    """Make ``ids`` registered accounts of an app (accounts first: relations name only
    accounts) straight in its users set, through ``setup``, a blocking client: untimed
    set-up, past any users limit."""
    for start in range(0, len(ids), 10_000):
        setup.sadd(keys.users, *ids[start : start + 10_000])


@dataclass(frozen=True)
class Timing:
    """A timed loop: throughput and per-operation latency percentiles (microseconds)."""

    ops: int
    seconds: float
    p50_us: float
    p99_us: float

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Target:
    """A figure the issue sets a bound on, and whether this run met it."""

    name: str
    value: float
    bound: str  # e.g. ">= 0.85"
    met: bool


@dataclass
class Figure:
    """One benchmark's result: a table (``columns`` x ``rows``), its targets, notes."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def at_least(self, name: str, value: float, bound: float) -> None:
        self.targets.append(Target(name, round(value, 3), f">= {bound:g}", value >= bound))

    def markdown(self) -> str:
        out = [f"### {self.title}", ""]
        out.append("| " + " | ".join(self.columns) + " |")
        out.append("|" + "---|" * len(self.columns))
        for row in self.rows:
            out.append("| " + " | ".join(_cell(value) for value in row) + " |")
        if self.targets:
            out += ["", "| target | measured | bound | met |", "|---|---:|---|---|"]
            for t in self.targets:
                out.append(f"| {t.name} | {t.value:g} | {t.bound} | {'yes' if t.met else 'NO'} |")
        if self.notes:
            out.append("")
            out += [f"- {note}" for note in self.notes]
        return "\n".join(out) + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def client(url: str, *, flush: bool = True) -> redis.Redis:
    """A blocking client of the benchmark database, emptied first (``flush``)."""
    made = redis.Redis.from_url(url, decode_responses=True)
    if flush:
        made.flushdb()
    return made


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _timing(latencies: list[float], seconds: float) -> Timing:
    return Timing(
        len(latencies),
        seconds,
        percentile(latencies, 0.50) * 1e6,
        percentile(latencies, 0.99) * 1e6,
    )


def time_sync(operation: Callable[[int], object], ops: int) -> Timing:
    """Runs ``operation(i)`` for i in range(ops), one after another."""
    latencies = []
    started = time.perf_counter()
    for i in range(ops):
        t0 = time.perf_counter()
        operation(i)
        latencies.append(time.perf_counter() - t0)
    return _timing(latencies, time.perf_counter() - started)


async def time_async(
    operation: Callable[[int], Awaitable[object]], ops: int, tasks: int = 1
) -> Timing:
    """Runs ``operation(i)`` for i in range(ops), spread over ``tasks`` concurrent tasks."""
    latencies: list[float] = []

    async def worker(first: int) -> None:
        for i in range(first, ops, tasks):
            t0 = time.perf_counter()
            await operation(i)
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(tasks)))
    return _timing(latencies, time.perf_counter() - started)


def median_of(runs: list[Timing]) -> Timing:
    """The run with the median throughput (the machine is shared: repeat, take the middle)."""
    return sorted(runs, key=lambda t: t.ops_per_s)[len(runs) // 2]


def machine(url: str = URL) -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        info["redis"] = redis.Redis.from_url(url).info("server")["redis_version"]
    except redis.RedisError:
        info["redis"] = "unreachable"
    return info


def write_json(figure: Figure, path: Path, url: str = URL, seconds: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "run_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": seconds,
        "machine": machine(url),
        "figure": asdict(figure),
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def read_json(path: Path) -> tuple[Figure, dict[str, Any]]:
    """A result written by :func:`write_json`: the figure, and the rest (run_at, machine...)."""
    document = json.loads(path.read_text())
    fields = document.pop("figure")
    fields["targets"] = [Target(**target) for target in fields["targets"]]
    return Figure(**fields), document


def cli(run: Callable[[str, bool], Figure]) -> None:
    """The command line of one benchmark: prints the table, writes the JSON."""
    parser = argparse.ArgumentParser(
        description=(run.__module__ and sys.modules[run.__module__].__doc__)
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a seconds-long run (numbers mean nothing)"
    )
    parser.add_argument("--url", default=URL, help="the Redis to use (default %(default)s)")
    parser.add_argument(
        "--json", type=Path, help="where to write the result (default bench/results/NAME.json)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    figure = run(args.url, args.smoke)
    print(figure.markdown())
    if args.json or not args.smoke:  # a smoke run's numbers mean nothing: kept only if asked
        path = args.json or RESULTS / f"{figure.name}.json"
        write_json(figure, path, args.url, time.perf_counter() - started)
