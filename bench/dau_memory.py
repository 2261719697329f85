"""Redis memory of one day's DAU set (the exact per-day user set record_login keeps), and of a
month's metering hash, on the real server at LIMITER_BENCH_REDIS_URL (default db 14).

    python bench/dau_memory.py [--users 1000000] [--json bench/results/dau_memory.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import redis

from limiter import Limiter, Settings, SyncStore
from limiter.testing import ManualClock

URL = os.environ.get("LIMITER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
APP = "bench-dau"
BEIJING = timezone(timedelta(hours=8))


def user_id(n: int) -> str:
    return f"user-{n:010d}"  # 15 bytes, a typical IM account id length


def measure(users: int) -> dict[str, float]:
    client = redis.Redis.from_url(URL, decode_responses=True)
    client.flushdb()
    clock = ManualClock(datetime(2026, 11, 26, 12, 0, tzinfo=BEIJING))
    engine = Limiter(SyncStore(client), settings=Settings(redis_url="memory://unused"), clock=clock)
    # The first logins go through the engine (the real script), the rest are loaded with
    # pipelined SADDs into the same key: the set's memory does not depend on how it was filled.
    through_engine = min(users, 10_000)
    for n in range(through_engine):
        engine.record_login(APP, user_id(n))
    day_key = engine.core.keys.app(APP).dau(date(2026, 11, 26))
    pipe = client.pipeline(transaction=False)
    for start in range(through_engine, users, 10_000):
        pipe.sadd(day_key, *(user_id(n) for n in range(start, min(users, start + 10_000))))
        if len(pipe) >= 20:
            pipe.execute()
    pipe.execute()
    engine.record_login(APP, user_id(users))  # one more through the script: count and peak
    assert client.scard(day_key) == users + 1
    set_bytes = client.memory_usage(day_key, samples=0) or 0
    meter_key = engine.core.keys.app(APP).meter("2026-11")
    # A full month of daily counts and bandwidth peaks in the metering hash.
    for day in range(1, 31):
        clock.set(datetime(2026, 11, day, 12, 0, tzinfo=BEIJING))
        engine.record_login(APP, "someone")
        engine.record_bandwidth(APP, "12.5")
    meter_bytes = client.memory_usage(meter_key, samples=0) or 0
    server = client.info("server")["redis_version"]
    client.flushdb()
    return {
        "users": users + 1,
        "day_set_bytes": set_bytes,
        "bytes_per_user": round(set_bytes / (users + 1), 1),
        "month_hash_bytes": meter_bytes,
        "redis_version": server,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = [measure(n) for n in sorted({100_000, args.users})]
    print(f"Redis {rows[0]['redis_version']} on {platform.machine()}, ids of 15 bytes")
    print(f"{'DAU':>10} {'day set (MB)':>13} {'bytes/user':>11} {'month hash (B)':>15}")
    for row in rows:
        print(
            f"{row['users']:>10,} {row['day_set_bytes'] / 1e6:>13.1f} "
            f"{row['bytes_per_user']:>11} {row['month_hash_bytes']:>15,}"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
