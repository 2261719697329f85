"""In front of an endpoint: req/s, p50 and p99 of one FastAPI "join a group" endpoint under wrk,
unguarded, behind one bare EVALSHA, behind the limiter (a handle or ``Reserve``), behind slowapi.

    python -m bench.endpoint [--url redis://127.0.0.1:6379/14] [--smoke]

Each variant (``bench/endpoint_app.py``) is its own uvicorn process with the same flags; the
variants take turns, round after round, and each figure is the median of its rounds (the
machine is shared: repeat, take the middle). Every request adds a new member, and after each run
the Redis state proves each guarded request reached Redis. ``BENCH_ENDPOINT_PROFILE=<folder>``
runs the servers under cProfile (numbers then mean nothing; the profiles do).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from string import Template

import psutil

from bench.common import Figure, cli, client, enroll
from bench.endpoint_app import BARE_SET, PATH, SLOWAPI_LIMIT, VARIANTS
from bench.servers import START_SECONDS, Server, answers, environment, free_port, start
from limiter import Limiter, Settings, SyncStore
from limiter.store.keys import AppKeys, KeyLayout

APP = "1400000001"
GROUP = "bench-endpoint"
THREADS, CONNECTIONS = 1, 32
FULL = (3, 10, 2)  # rounds, seconds per run, seconds of warm-up per server
SMOKE = (1, 1, 0)
# Most requests a second a run is ready for: the members of a guarded run are registered
# accounts (accounts first), made before it for this many requests a second.
MOST_PER_SECOND = 20_000
# wrk's request() is called for every request: each one adds a new member (the run's tag keeps
# members of different runs apart), so the guard decides a real addition every time; those of
# the guarded variants are registered accounts, made before the run (untimed).
WRK_SCRIPT = Template("""
local n = 0
request = function()
  n = n + 1
  local body = '{"GroupId":"$group","Member_Account":"$tag-' .. n .. '"}'
  return wrk.format("POST", "$path", {["Content-Type"] = "application/json"}, body)
end
""")
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Load:
    """What one wrk run measured."""

    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float  # the server's CPU time per answered request (steadier than req/s)


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    return found


def parse_wrk(output: str, server_cpu_s: float) -> Load:
    """The figures of ``wrk --latency`` (and the server's CPU seconds meanwhile); raises unless
    every answer was a 2xx and no socket failed (failed requests would make a variant look
    fast)."""
    for failure in ("Non-2xx or 3xx responses", "Socket errors"):
        if failure in output:
            raise RuntimeError(f"wrk saw failures:\n{output}")

    def found(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"no {pattern!r} in wrk's output:\n{output}")
        return match

    def latency(percent: str) -> float:
        match = found(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)$")
        return float(match[1]) * _UNITS_MS[match[2]]

    requests = int(found(r"^\s+(\d+) requests in")[1])
    return Load(
        requests=requests,
        per_second=float(found(r"^Requests/sec:\s+([\d.]+)")[1]),
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        server_cpu_us=server_cpu_s / max(requests, 1) * 1e6,
    )


def pinned(cpu: int | None, command: Sequence[str]) -> list[str]:
    return list(command) if cpu is None else ["taskset", "-c", str(cpu), *command]


def cpus() -> tuple[int | None, int | None]:
    """(server's CPU, wrk's CPU): apart, so the load generator does not steal from the server."""
    usable = sorted(os.sched_getaffinity(0))
    return (usable[0], usable[-1]) if len(usable) > 1 else (None, None)


def uvicorn_flags() -> list[str]:
    """One worker, no access log, the fastest loop and HTTP parser installed (the same for all)."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return ["--workers", "1", "--no-access-log", "--loop", loop, "--http", http]


@contextmanager
def serving(url: str, cpu: int | None, logs: Path) -> Iterator[dict[str, Server]]:
    """A uvicorn process per variant, started together on every CPU (the start-up is most of a
    smoke run) and then pinned to ``cpu``; all stopped at the end, each required to exit 0."""
    started: dict[str, Server] = {}
    try:
        for variant in VARIANTS:
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", "bench.endpoint_app:create_app"]
            command += ["--factory", "--host", "127.0.0.1", "--port", str(port), *uvicorn_flags()]
            env = environment(LIMITER_REDIS_URL=url, BENCH_ENDPOINT_VARIANT=variant)
            log_path = logs / f"{variant}.log"
            started[variant] = start(
                command,
                base_url=f"http://127.0.0.1:{port}",
                log_path=log_path,
                env=env,
                ready_path=None,
            )
        for server in started.values():
            ready = functools.partial(answers, server.base_url, "/docs")
            server.wait_until(ready, "no answer on /docs", START_SECONDS)
            if cpu is not None:
                os.sched_setaffinity(server.process.pid, {cpu})
        yield started
    finally:
        with ThreadPoolExecutor() as pool:  # each waits for its own graceful shutdown
            codes = dict(zip(started, pool.map(_stopped, started.values()), strict=True))
    for variant, code in codes.items():
        if code != 0:
            raise RuntimeError(
                f"the {variant} server exited with {code}:\n{started[variant].output()}"
            )


def _stopped(server: Server) -> int:
    return server.stop(signal.SIGINT)


def load(server: Server, tag: str, seconds: int, cpu: int | None, folder: Path) -> Load:
    """One wrk run against ``server``, with the CPU time the server spent meanwhile."""
    script = folder / f"{tag}.lua"
    script.write_text(WRK_SCRIPT.substitute(group=GROUP, tag=tag, path=f"{PATH}?sdkappid={APP}"))
    command = [wrk_binary(), f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    command += ["-s", str(script), server.base_url]
    process = psutil.Process(server.process.pid)
    started = sum(process.cpu_times()[:2])
    done = subprocess.run(pinned(cpu, command), capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout, sum(process.cpu_times()[:2]) - started)


def redis_work(url: str) -> dict[str, Callable[[], int]]:
    """Per guarded variant, a count its requests raise by one each: the proof they reached Redis."""
    made = client(url, flush=False)
    engine = Limiter(SyncStore(made), settings=Settings(redis_url=url))

    def members() -> int:
        usage = engine.group_usage(APP, GROUP)
        return 0 if usage is None else usage.members

    def slowapi_hits() -> int:
        return sum(int(made.get(key) or 0) for key in made.scan_iter("LIMITS:*"))

    return {
        "bare": lambda: int(made.scard(BARE_SET)),
        "handle": members,
        "reserve": members,
        "slowapi": slowapi_hits,
    }


def prepare(url: str) -> None:
    """An empty database and the group every request joins, its size unlimited by a group
    override so that no addition is refused however long the run."""
    engine = Limiter(SyncStore(client(url)), settings=Settings(redis_url=url))
    engine.set_override(APP, "group_members", None, group=GROUP)
    enroll(engine.store.client, app_keys(), ["owner"])
    engine.create_group(APP, GROUP, "Public", "owner")


def app_keys() -> AppKeys:
    """The benchmark app's keys under the servers' key prefix (the default)."""
    return KeyLayout(Settings().key_prefix).app(APP)


def measure(
    url: str,
    variant: str,
    server: Server,
    tag: str,
    seconds: int,
    folder: Path,
    work: Callable[[], int] | None,
) -> Load:
    """One wrk run; with ``work`` (see :func:`redis_work`), checks that each answered request
    reached Redis."""
    before = work() if work else 0
    ready = seconds * MOST_PER_SECOND
    if variant in ("handle", "reserve"):
        setup = client(url, flush=False)
        enroll(setup, app_keys(), [f"{tag}-{n}" for n in range(1, ready + 1)])
        setup.close()
    measured = load(server, tag, seconds, cpus()[1], folder)
    if work is not None and work() - before < measured.requests:
        raise RuntimeError(f"{variant}: {measured.requests} answers, {work() - before} in Redis")
    if variant in ("handle", "reserve") and measured.requests > ready:
        raise RuntimeError(f"{variant}: {measured.requests} requests, accounts for {ready} only")
    return measured


def run(url: str, smoke: bool) -> Figure:
    wrk_binary()
    rounds, seconds, warmup = SMOKE if smoke else FULL
    prepare(url)
    works = redis_work(url)
    loads: dict[str, list[Load]] = {variant: [] for variant in VARIANTS}
    with (
        tempfile.TemporaryDirectory() as temporary,
        serving(url, cpus()[0], Path(temporary)) as servers,
    ):
        folder = Path(temporary)

        def measured(variant: str, tag: str, seconds: int) -> Load:
            work = works.get(variant)
            return measure(url, variant, servers[variant], tag, seconds, folder, work)

        for variant in VARIANTS:
            if warmup:  # the first requests pay for imports, pools, caches
                measured(variant, f"{variant}-warmup", warmup)
        for turn in range(rounds):
            # Each round starts with the next variant: no variant always follows the same one.
            for variant in VARIANTS[turn % len(VARIANTS) :] + VARIANTS[: turn % len(VARIANTS)]:
                loads[variant].append(measured(variant, f"{variant}{turn}", seconds))
    return figure(loads, rounds, seconds, warmup)


def figure(loads: dict[str, list[Load]], rounds: int, seconds: int, warmup: int) -> Figure:
    made = Figure(
        "endpoint",
        "One FastAPI endpoint: no guard, bare EVALSHA, the limiter (two wirings), slowapi",
        [
            "variant",
            "req/s",
            "p50 (ms)",
            "p99 (ms)",
            "req/s vs bare EVALSHA",
            "server CPU/req (us)",
        ],
    )
    rate = {
        variant: statistics.median(r.per_second for r in runs) for variant, runs in loads.items()
    }
    for variant, runs in loads.items():
        made.rows.append(
            [
                variant,
                rate[variant],
                statistics.median(r.p50_ms for r in runs),
                statistics.median(r.p99_ms for r in runs),
                round(rate[variant] / rate["bare"], 3),
                statistics.median(r.server_cpu_us for r in runs),
            ]
        )
    for guard in ("handle", "reserve"):
        made.at_least(f"{guard} / bare EVALSHA", paired(loads[guard], loads["bare"]), 0.90)
        made.at_least(f"{guard} / slowapi", paired(loads[guard], loads["slowapi"]), 1.0)
    server_cpu, wrk_cpu = cpus()
    made.notes += [
        f"medians of {rounds} round(s) of {seconds} s per variant (after {warmup} s of warm-up), "
        "variants taking turns; the "
        "targets are the medians of the per-round req/s ratios",
        f"wrk -t{THREADS} -c{CONNECTIONS} --latency (on CPU {wrk_cpu}), POST {PATH}, "
        "a new member per request; every answer checked 2xx",
        f"uvicorn {' '.join(uvicorn_flags())} (on CPU {server_cpu}), one process per variant; "
        "its CPU time per request is steadier than req/s on a busy machine, and shows what "
        "req/s hides: time the event loop spends blocked (slowapi) costs throughput, not CPU",
        "bare: one EVALSHA of SADD on redis.asyncio; handle: Depends(AppLimiter()) and "
        "add_members(group, user, all_or_nothing=True) in the handler; reserve: "
        "Depends(Reserve('add_members', group='GroupId', users='Member_Account')), a yield "
        "dependency that releases if the handler raises. Both make one all-or-nothing decision "
        "adding a new user to a Public group (unlimited by a group override; the user's "
        "groups_per_user checked)",
        f"slowapi: @limiter.limit('{SLOWAPI_LIMIT}') keyed by sdkappid, Redis storage (limits' "
        "blocking client, called from the async endpoint, as slowapi does)",
        "Why reserve misses where handle meets the targets: the same decision, but through a "
        "yield dependency (FastAPI runs it in an exit stack so that it can release when the "
        "handler raises: about 50-70 us of CPU per request, measured in process), and it reads "
        "its sources from the query and the JSON body again (about 11 us). That is the price "
        "of the automatic release; an endpoint that needs none decides in its handler (handle).",
    ]
    return made


def paired(runs: list[Load], others: list[Load]) -> float:
    """The median of the rounds' req/s ratios (a round's variants share the machine's mood)."""
    return statistics.median(a.per_second / b.per_second for a, b in zip(runs, others, strict=True))


if __name__ == "__main__":
    cli(run)
