"""Runs the benchmarks in turn on the Redis at LIMITER_BENCH_REDIS_URL, writes each one's JSON
under bench/results/, then renders docs/benchmarks.md from the latest result of every one.

    python -m bench.all [--url redis://127.0.0.1:6379/14] [--only NAME ...] [--smoke]

``--only`` reruns some and keeps the others' last results (each table says when it ran);
``--smoke`` runs everything at smoke size and writes nothing.
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

from bench.common import RESULTS, URL, Figure, read_json, write_json

# In the order of the issues: decision cost, endpoint, big groups, flat cost, reconcile, memory,
# the relation layout against 0.1's, the cluster.
BENCHMARKS = (
    "decisions",
    "endpoint",
    "groups",
    "scale",
    "reconcile",
    "memory",
    "layouts",
    "cluster",
)
DOC = Path(__file__).parent.parent / "docs" / "benchmarks.md"


def run_one(name: str, url: str, smoke: bool) -> tuple[Figure, float]:
    module = importlib.import_module(f"bench.{name}")
    started = time.perf_counter()
    figure: Figure = module.run(url, smoke)
    return figure, time.perf_counter() - started


def document(folder: Path = RESULTS) -> str:
    """The page, from the result (``folder``/NAME.json) of every benchmark."""
    results = [read_json(folder / f"{name}.json") for name in BENCHMARKS]
    machine = results[0][1]["machine"]
    lines = [
        "<!-- written by `python -m bench.all` from bench/results/*.json; do not edit by hand -->",
        "# Benchmarks",
        "",
        f"Machine: {machine['cpus']} CPUs ({machine['platform']}), Python {machine['python']}, "
        f"Redis {machine['redis']} on 127.0.0.1 (the same machine), hiredis installed. It is "
        "shared and noisy: every figure that has a target is a ratio against a baseline "
        "measured in the same run, interleaved with it, median of the rounds.",
        "",
        "Commands (install with `pip install -e '.[bench]'`; wrk from Debian's `wrk` package):",
        "",
        "```",
        "python -m bench.all                 # everything, then rewrites this page",
        *(f"python -m bench.{f.name:<15} # {f.title}" for f, _ in results),
        "```",
        "",
        "Each writes `bench/results/NAME.json`; `--smoke` is a seconds-long run that writes "
        "nothing (the test suite runs it); `--url` or `LIMITER_BENCH_REDIS_URL` picks the Redis "
        "(default `redis://127.0.0.1:6379/14`, which the run empties).",
        "",
        "## Targets",
        "",
        "| benchmark | target | measured | bound | met |",
        "|---|---|---:|---|---|",
    ]
    for figure, _ in results:
        for t in figure.targets:
            met = "yes" if t.met else "**NO**"
            lines.append(f"| {figure.name} | {t.name} | {t.value:g} | {t.bound} | {met} |")
    missed = sum(not t.met for figure, _ in results for t in figure.targets)
    if missed:
        lines += ["", f"{missed} target(s) missed; the notes under each table say why."]
    for figure, extra in results:
        took = f"{extra['seconds']:,.0f} s" if extra.get("seconds") else "time not recorded"
        lines += ["", figure.markdown().rstrip(), "", f"_(run {extra.get('run_at')}, {took})_"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=URL)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=BENCHMARKS)
    args = parser.parse_args()
    for name in args.only:
        figure, seconds = run_one(name, args.url, args.smoke)
        print(figure.markdown(), flush=True)
        if not args.smoke:
            write_json(figure, RESULTS / f"{figure.name}.json", args.url, seconds)
    if not args.smoke:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(document())
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
