"""Runs every benchmark in turn on the Redis at LIMITER_BENCH_REDIS_URL, writes each one's JSON
under bench/results/ and the whole report to docs/benchmarks.md.

    python -m bench.all [--url redis://127.0.0.1:6379/14] [--smoke] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import importlib
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import RESULTS, URL, Figure, machine, write_json

# In the order of the issue: decision cost, endpoint, big groups, flat cost, reconcile, memory.
BENCHMARKS = ("decisions", "endpoint", "groups", "scale", "reconcile", "memory")
DOC = Path(__file__).parent.parent / "docs" / "benchmarks.md"


def run_all(url: str, smoke: bool, names: tuple[str, ...]) -> list[tuple[Figure, float]]:
    done = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        started = time.perf_counter()
        figure: Figure = module.run(url, smoke)
        done.append((figure, time.perf_counter() - started))
        print(figure.markdown(), flush=True)
    return done


def document(done: list[tuple[Figure, float]], url: str) -> str:
    info = machine(url)
    missed = [(f, t) for f, _ in done for t in f.targets if not t.met]
    lines = [
        "<!-- written by `python -m bench.all`; do not edit by hand -->",
        "# Benchmarks",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {info['cpus']} CPUs "
        f"({info['platform']}), Python {info['python']}, Redis {info['redis']} on "
        "127.0.0.1 (the same machine), hiredis installed. The machine is shared and noisy: "
        "every figure that has a target is a ratio against a baseline measured in the same "
        "run, interleaved with it, median of the rounds.",
        "",
        "Commands (install with `pip install -e '.[bench]'`; wrk from Debian's `wrk` package):",
        "",
        "```",
        "python -m bench.all                 # everything, rewrites this page",
        *(f"python -m bench.{f.name:<16} # {f.title}" for f, _ in done),
        "```",
        "",
        "Each writes `bench/results/NAME.json`; `--smoke` is a seconds-long run (the test suite "
        "runs it); `--url` or `LIMITER_BENCH_REDIS_URL` picks the Redis "
        "(default `redis://127.0.0.1:6379/14`, which the run empties).",
        "",
        "## Targets",
        "",
        "| benchmark | target | measured | bound | met |",
        "|---|---|---:|---|---|",
    ]
    for figure, _ in done:
        for t in figure.targets:
            met = "yes" if t.met else "**NO**"
            lines.append(f"| {figure.name} | {t.name} | {t.value:g} | {t.bound} | {met} |")
    if missed:
        lines += ["", f"{len(missed)} target(s) missed; the notes under each table say why."]
    for figure, seconds in done:
        lines += ["", figure.markdown().rstrip(), "", f"_({seconds:,.0f} s)_"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=URL)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=BENCHMARKS)
    args = parser.parse_args()
    done = run_all(args.url, args.smoke, tuple(args.only))
    for figure, _ in done:
        write_json(figure, RESULTS / f"{figure.name}.json", args.url)
    if not args.smoke and tuple(args.only) == BENCHMARKS:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(document(done, args.url))
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
