"""Metering races on the real server: OS processes, each with its own connection, record logins,
create and destroy groups and report bandwidth for one app at once (see ``tests/test_races.py``
for the harness). Afterwards the counts and peaks are read back and compared with what the
workers did, which is known exactly.

Each worker's engine gets a fixed clock (the plan carries the instant), so the billing day and
month do not depend on when the test runs. Accounts first (``require_registered``): the users
who log in and own groups are made accounts before the race, straight in the app's users set
(more of them than the trial's users limit); a login of an id that is not an account is not
counted.
"""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
import redis

from bench.common import enroll as straight_in
from limiter import Limiter, Settings
from limiter.store.keys import KeyLayout
from limiter.testing import ManualClock
from tests.conftest import all_keys, at, keys_of, real_client_or_skip
from tests.test_races import race, raced

pytestmark = pytest.mark.redis

WORKERS = 8


def pin(engine: Limiter, instant: datetime) -> Limiter:
    """The engine with its clock stopped at ``instant``: the same one if its clock is manual,
    else one on the same store and settings."""
    if isinstance(engine.clock, ManualClock):
        engine.clock.set(instant)
        return engine
    return Limiter(engine.store, settings=engine.settings, clock=ManualClock(instant))


def forget_app(client: redis.Redis, app: str) -> None:
    """Delete every key of the app (day sets and month hashes too), then disconnect."""
    keys = list(all_keys(client, f"limiter:{{{app}}}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def enroll(client: redis.Redis, app: str, users: list[str]) -> None:
    """Make ``users`` registered accounts of ``app`` as set-up: straight into its users set."""
    straight_in(client, KeyLayout().app(app), users)


def engine_at(url: str, instant: datetime) -> Limiter:
    return Limiter.from_settings(
        Settings(redis_url=url, cache_seconds=0), clock=ManualClock(instant)
    )


# -- workers (module level, so the spawned processes can import them) ---------------------------


def _login_job(engine: Limiter, app: str, plan: Any) -> list[tuple[Any, ...]]:
    instant, logins = plan
    engine = pin(engine, instant)
    records = []
    for user, when in logins:
        result = engine.record_login(app, user, when)
        records.append(
            (user, result.day, result.counted, result.dau, result.late, result.registered)
        )
    return records


def _groups_job(engine: Limiter, app: str, plan: Any) -> list[tuple[Any, ...]]:
    instant, steps = plan
    engine = pin(engine, instant)
    records: list[tuple[Any, ...]] = []
    for action, group, group_type in steps:
        if action == "create":
            created = engine.create_group(app, group, group_type, f"owner-{group}")
            records.append((action, group, created.members))
        else:
            destroyed = engine.destroy_group(app, group)
            records.append((action, group, destroyed.existed))
    return records


def _bandwidth_job(engine: Limiter, app: str, plan: Any) -> list[tuple[Any, ...]]:
    instant, measurements = plan
    engine = pin(engine, instant)
    return [(when, mbps, engine.record_bandwidth(app, mbps, when)) for when, mbps in measurements]


# -- 1. logins of overlapping users on two days at once ------------------------------------------


def test_concurrent_logins_count_each_user_once_a_day_and_the_peak_exactly(real_url: str) -> None:
    app = "race-dau"
    client = real_client_or_skip(real_url)
    # 00:05 on November 27: November 26 is still inside its 10 minute late window
    instant = at(2026, 11, 27, 0, 5)
    yesterday, today = date(2026, 11, 26), date(2026, 11, 27)
    late_evening = at(2026, 11, 26, 23, 58)
    try:
        pools = {
            yesterday: [f"y{i:04d}" for i in range(1500)],
            today: [f"t{i:04d}" for i in range(1000)],
        }
        enroll(client, app, pools[yesterday] + pools[today])
        strangers = [f"s{i:03d}" for i in range(200)]  # not accounts: never counted
        outside = set(strangers)
        plans = []
        for index in range(WORKERS):
            rng = random.Random(3000 + index)
            # each worker logs in a random 40% of each pool, some users several times, and
            # a few ids that are not accounts on either day
            logins = [(u, late_evening) for u in rng.sample(pools[yesterday], 600)]
            logins += [(u, None) for u in rng.sample(pools[today], 400)]
            logins += rng.sample(logins, 200)
            logins += [(u, rng.choice((late_evening, None))) for u in rng.sample(strangers, 50)]
            rng.shuffle(logins)
            plans.append((instant, logins))
        records = raced(_login_job, app, plans, real_url)
        assert len(records) == WORKERS * 1250

        outsiders = [record for record in records if record[0] in outside]
        assert len(outsiders) == WORKERS * 50
        for _, _, counted, _, late, registered in outsiders:
            assert (counted, late, registered) == (False, False, False)
        records = [record for record in records if record[0] not in outside]
        assert all(registered for *_, registered in records)
        seen = {day: {u for (u, d, *_) in records if d == day} for day in (yesterday, today)}
        assert 1000 < len(seen[yesterday]) <= 1500
        assert 600 < len(seen[today]) <= 1000
        # each user counted exactly once per day, however many workers logged them in
        for day in (yesterday, today):
            counted = [u for (u, d, c, *_) in records if d == day and c]
            assert sorted(counted) == sorted(seen[day])
        assert not any(late for *_, late, _ in records)
        for _, day, _, dau, _, _ in records:
            assert 1 <= dau <= len(seen[day])
        for _, day, _, dau, _, _ in outsiders:  # the day's count as it stood, unchanged
            assert 0 <= dau <= len(seen[day])

        engine = engine_at(real_url, instant)
        try:
            keys = keys_of(engine, app)
            for day in (yesterday, today):
                assert client.smembers(keys.dau(day)) == seen[day]
            usage = engine.monthly_usage(app, "2026-11")
            assert usage.dau == {yesterday: len(seen[yesterday]), today: len(seen[today])}
            assert (usage.peak_dau, usage.peak_dau_day) == (len(seen[yesterday]), yesterday)
        finally:
            engine.close()
    finally:
        forget_app(client, app)


# -- 2. groups created and destroyed by many workers ----------------------------------------------

TYPES = ("Public", "Private", "ChatRoom", "Work", "Meeting")


def test_concurrent_group_changes_keep_the_months_peak_exact(real_url: str) -> None:
    app = "race-groups"
    client = real_client_or_skip(real_url)
    setup = engine_at(real_url, at(2026, 11, 20, 12, 0))
    try:
        # every group's owner (one per group id) is an account
        groups = [f"old{n}" for n in range(5)]
        groups += [f"w{index}-g{n:02d}" for index in range(WORKERS) for n in range(39)]
        groups += [f"w{index}-av" for index in range(WORKERS)]
        groups += [f"j{index}-{n}" for index in range(WORKERS) for n in range(25)]
        enroll(client, app, [f"owner-{group}" for group in groups])
        for n in range(5):
            setup.create_group(app, f"old{n}", "Public", f"owner-old{n}")

        # November 26: creations only, so the peak is the final count
        plans = []
        for index in range(WORKERS):
            steps = [("create", f"w{index}-g{n:02d}", TYPES[n % len(TYPES)]) for n in range(39)]
            steps.append(("create", f"w{index}-av", "AVChatRoom"))  # 8 rooms: trial allows 10
            plans.append((at(2026, 11, 26, 12, 0), steps))
        records = [
            record for worker in race(_groups_job, app, plans, real_url) for record in worker
        ]
        assert len(records) == WORKERS * 40
        assert all(members == 1 for *_, members in records)
        live = client.hlen(keys_of(setup, app).groups)
        assert live == 5 + WORKERS * 40
        november = setup.monthly_usage(app, "2026-11")
        assert (november.peak_groups, november.peak_groups_day) == (live, date(2026, 11, 26))
        meter = keys_of(setup, app).meter

        # December 1, just after midnight: destroys only, so the peak is the count before them
        plans = []
        for index in range(WORKERS):
            steps = [("destroy", f"w{index}-g{n:02d}", "") for n in range(30)]
            random.Random(4000 + index).shuffle(steps)
            plans.append((at(2026, 12, 1, 0, 0, 10), steps))
        records = [
            record for worker in race(_groups_job, app, plans, real_url) for record in worker
        ]
        assert all(existed for *_, existed in records)
        remaining = client.hlen(keys_of(setup, app).groups)
        assert remaining == live - WORKERS * 30
        pin(setup, at(2026, 12, 1, 0, 1))
        december = setup.monthly_usage(app, "2026-12")
        assert (december.peak_groups, december.peak_groups_day) == (live, date(2026, 12, 1))
        assert client.hget(meter("2026-12"), "groups_start") == str(live)

        # January 5: every worker creates and destroys its own groups in turn; whatever the
        # interleaving, the peak lies between the month's start count plus one and the start
        # count plus one group per worker, and the month ends at the live count
        plans = []
        for index in range(WORKERS):
            steps = []
            for n in range(25):
                steps += [("create", f"j{index}-{n}", "Public"), ("destroy", f"j{index}-{n}", "")]
            plans.append((at(2027, 1, 5, 12, 0), steps))
        race(_groups_job, app, plans, real_url)
        assert client.hlen(keys_of(setup, app).groups) == remaining
        pin(setup, at(2027, 1, 5, 12, 1))
        january = setup.monthly_usage(app, "2027-01")
        assert remaining + 1 <= january.peak_groups <= remaining + WORKERS
        assert january.peak_groups_day == date(2027, 1, 5)
        assert client.hget(meter("2027-01"), "groups_start") == str(remaining)
        # earlier months are untouched
        assert setup.monthly_usage(app, "2026-11").peak_groups == live
        assert setup.monthly_usage(app, "2026-12").peak_groups == live
    finally:
        setup.close()
        forget_app(client, app)


# -- 3. bandwidth reported by many workers -------------------------------------------------------


def test_concurrent_bandwidth_reports_keep_each_days_maximum(real_url: str) -> None:
    app = "race-bandwidth"
    client = real_client_or_skip(real_url)
    instant = at(2026, 11, 26, 0, 5)  # yesterday still takes readings (late window)
    earlier = at(2026, 11, 25, 18, 0)
    try:
        plans = []
        for index in range(WORKERS):
            rng = random.Random(5000 + index)
            measurements = []
            for _ in range(150):
                when = earlier if rng.random() < 0.3 else None
                measurements.append((when, Decimal(rng.randint(0, 99_999)) / 100))
            plans.append((instant, measurements))
        records = [
            record for worker in race(_bandwidth_job, app, plans, real_url) for record in worker
        ]
        by_day: dict[date, list[Decimal]] = {date(2026, 11, 25): [], date(2026, 11, 26): []}
        for when, mbps, peak in records:
            day = date(2026, 11, 25) if when is not None else date(2026, 11, 26)
            by_day[day].append(mbps)
            assert peak >= mbps  # the answer is the day's peak so far, never below the input
        engine = engine_at(real_url, instant)
        try:
            usage = engine.monthly_usage(app, "2026-11")
            assert usage.bandwidth == {day: max(values) for day, values in by_day.items()}
        finally:
            engine.close()
        for when, _, peak in records:
            day = date(2026, 11, 25) if when is not None else date(2026, 11, 26)
            assert peak <= usage.bandwidth[day]
    finally:
        forget_app(client, app)
