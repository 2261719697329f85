"""Metering through the engine on both stores, sync and async: daily active users counted once
per billing day (Asia/Shanghai), the month's peaks (DAU, live groups), AV bandwidth, history
cutoff and the bill the engine prices from them.

Times are moved with the ManualClock; every expected number is worked out by hand. Accounts
first: only registered accounts' logins count and only accounts own groups, so each test enrolls
the ids it uses (straight into the app's users set).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from limiter import Catalog, InvalidRequest
from limiter.catalog import load_catalog
from limiter.metering import Month
from limiter.periods import consecutive_periods
from limiter.plan import (
    EDITION_FIELD,
    ExpansionGrant,
    Purchase,
    edition_field_value,
    expansion_field,
    expansion_field_value,
)
from limiter.schemas import BillView
from limiter.testing import ManualClock
from tests.conftest import APP, at
from tests.conftest import keys_of as keys_in

NOVEMBER = Month(2026, 11)
DECEMBER = Month(2026, 12)
TODAY = date(2026, 11, 26)  # the clock fixture's day
LATE_SECONDS = 600  # the default setting
RETENTION_DAYS = 400  # the default metering_retention_days


def keys_of(engine: Any) -> Any:
    return keys_in(engine, APP)


# -- DAU: once per user and billing day ---------------------------------------------------------


def test_a_user_logging_in_1000_times_counts_once(engine, client, enroll):
    enroll(APP, "chatty")
    results = [engine.record_login(APP, "chatty") for _ in range(1000)]
    assert results[0].counted is True
    assert all(not r.counted for r in results[1:])
    assert {(r.day, r.dau, r.late) for r in results} == {(TODAY, 1, False)}
    assert client.scard(keys_of(engine).dau(TODAY)) == 1
    usage = engine.monthly_usage(APP, "2026-11")
    assert usage.dau == {TODAY: 1}
    assert (usage.peak_dau, usage.peak_dau_day) == (1, TODAY)


def test_a_login_of_a_user_that_is_not_an_account_is_not_counted(engine, client, enroll):
    keys = keys_of(engine)
    enroll(APP, "member")
    stranger = engine.record_login(APP, "stranger")
    assert (stranger.day, stranger.counted, stranger.registered, stranger.dau) == (
        TODAY,
        False,
        False,
        0,
    )
    assert stranger.late is False
    assert not client.exists(keys.dau(TODAY), keys.meter("2026-11"))  # nothing written
    member = engine.record_login(APP, "member")
    assert (member.counted, member.registered, member.dau) == (True, True, 1)
    again = engine.record_login(APP, "stranger")
    assert (again.counted, again.registered, again.dau) == (False, False, 1)
    assert client.smembers(keys.dau(TODAY)) == {"member"}
    assert engine.monthly_usage(APP, NOVEMBER).dau == {TODAY: 1}
    # registered (as the app would), the same user counts from its next login that day
    assert engine.register_users(APP, ["stranger"]).added == ("stranger",)
    counted = engine.record_login(APP, "stranger")
    assert (counted.counted, counted.registered, counted.dau) == (True, True, 2)
    assert engine.monthly_usage(APP, NOVEMBER).dau == {TODAY: 2}


def test_with_require_registered_off_a_login_counts_without_an_account(make_engine, client):
    # The setting off is what this test is about: ids that are not accounts count in DAU.
    engine = make_engine(require_registered=False)
    first = engine.record_login(APP, "stranger")
    assert (first.day, first.counted, first.dau) == (TODAY, True, 1)
    assert engine.record_login(APP, "stranger").counted is False  # once a day, as any login
    assert engine.record_login(APP, "another").dau == 2
    assert client.smembers(keys_of(engine).dau(TODAY)) == {"stranger", "another"}
    assert engine.monthly_usage(APP, NOVEMBER).dau == {TODAY: 2}
    assert engine.usage(APP).users == 0  # counting a login registers no account


def test_each_user_counts_once_a_day_and_afresh_the_next_day(engine, clock, enroll):
    enroll(APP, "a", "b", "c", "d")
    for user in ["a", "b", "c", "a", "b", "a"]:
        engine.record_login(APP, user)
    assert engine.record_login(APP, "c").dau == 3
    clock.set(at(2026, 11, 27, 9, 0))
    first = engine.record_login(APP, "a")
    assert (first.day, first.counted, first.dau) == (date(2026, 11, 27), True, 1)
    engine.record_login(APP, "d")
    usage = engine.monthly_usage(APP, NOVEMBER)
    assert usage.dau == {TODAY: 3, date(2026, 11, 27): 2}
    # the peak is the month's highest day, and stays on its day
    assert (usage.peak_dau, usage.peak_dau_day) == (3, TODAY)


def test_the_peak_moves_to_a_later_day_only_when_it_is_exceeded(engine, clock, enroll):
    enroll(APP, "a", "b", "c")
    for user in ["a", "b"]:
        engine.record_login(APP, user)
    clock.set(at(2026, 11, 27, 9, 0))
    for user in ["a", "b"]:
        engine.record_login(APP, user)
    usage = engine.monthly_usage(APP, NOVEMBER)
    assert (usage.peak_dau, usage.peak_dau_day) == (2, TODAY)  # a tie keeps the first day
    engine.record_login(APP, "c")
    usage = engine.monthly_usage(APP, NOVEMBER)
    assert (usage.peak_dau, usage.peak_dau_day) == (3, date(2026, 11, 27))


def test_the_billing_day_ends_at_midnight_beijing_time(engine, clock, client, enroll):
    enroll(APP, "night-owl", "early-bird", "traveller")
    clock.set(at(2026, 12, 1, 0, 1))
    last = engine.record_login(APP, "night-owl", at(2026, 11, 30, 23, 59, 59))
    assert (last.day, last.counted, last.late) == (date(2026, 11, 30), True, False)
    first = engine.record_login(APP, "early-bird", at(2026, 12, 1, 0, 0))
    assert (first.day, first.counted) == (date(2026, 12, 1), True)
    # 15:59:59 UTC on November 30 is the last second of November 30 in Beijing
    still = engine.record_login(APP, "traveller", datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC))
    assert (still.day, still.counted, still.dau) == (date(2026, 11, 30), True, 2)
    # 16:30 UTC is half past midnight on December 1
    clock.set(at(2026, 12, 1, 0, 30))
    utc = engine.record_login(APP, "traveller", datetime(2026, 11, 30, 16, 30, tzinfo=UTC))
    assert (utc.day, utc.counted, utc.dau) == (date(2026, 12, 1), True, 2)

    november = engine.monthly_usage(APP, "2026-11")
    december = engine.monthly_usage(APP, "2026-12")
    assert november.dau == {date(2026, 11, 30): 2}
    assert (november.peak_dau, november.peak_dau_day) == (2, date(2026, 11, 30))
    assert december.dau == {date(2026, 12, 1): 2}
    assert (december.peak_dau, december.peak_dau_day) == (2, date(2026, 12, 1))
    keys = keys_of(engine)
    assert client.smembers(keys.dau(date(2026, 11, 30))) == {"night-owl", "traveller"}
    assert client.smembers(keys.dau(date(2026, 12, 1))) == {"early-bird", "traveller"}
    assert client.hget(keys.meter("2026-11"), "dau:2026-11-30") == "2"
    assert client.hget(keys.meter("2026-12"), "dau:2026-12-01") == "2"


def test_logins_inside_the_late_window_count_for_the_closed_day(engine, clock, enroll):
    enroll(APP, "a", "b")
    clock.set(at(2026, 11, 30, 22, 0))
    engine.record_login(APP, "a")
    # 00:09:59 on December 1: November 30 closed 599 s ago, inside the 600 s window
    clock.set(at(2026, 12, 1, 0, 9, 59))
    late_but_in = engine.record_login(APP, "b", at(2026, 11, 30, 23, 58))
    assert (late_but_in.day, late_but_in.counted, late_but_in.late) == (
        date(2026, 11, 30),
        True,
        False,
    )
    assert late_but_in.dau == 2
    november = engine.monthly_usage(APP, NOVEMBER)
    assert (november.dau, november.peak_dau) == ({date(2026, 11, 30): 2}, 2)
    assert engine.monthly_usage(APP, DECEMBER).dau == {}


def test_a_login_for_a_day_closed_longer_ago_than_the_window_is_not_counted(
    engine, clock, client, enroll
):
    enroll(APP, "a", "b", "c")
    clock.set(at(2026, 11, 26, 22, 0))
    engine.record_login(APP, "a")
    engine.record_login(APP, "b")
    # 00:10:01: the day closed 601 s ago
    clock.set(at(2026, 11, 27, 0, 10, 1))
    late = engine.record_login(APP, "c", at(2026, 11, 26, 23, 59))
    assert (late.day, late.counted, late.late, late.dau) == (TODAY, False, True, 2)
    assert engine.record_login(APP, "a", at(2026, 11, 26, 23, 0)).late is True
    usage = engine.monthly_usage(APP, NOVEMBER)
    assert (usage.dau, usage.peak_dau) == ({TODAY: 2}, 2)
    assert "c" not in client.smembers(keys_of(engine).dau(TODAY))
    # a day nobody logged in on reports 0 when the late login arrives
    empty = engine.record_login(APP, "c", at(2026, 11, 20, 12, 0))
    assert (empty.day, empty.late, empty.dau) == (date(2026, 11, 20), True, 0)
    assert engine.monthly_usage(APP, NOVEMBER).dau == {TODAY: 2}


def test_a_login_half_a_second_inside_the_late_window_counts(engine, clock, enroll):
    """599.5 s after the day closed is inside a 600 s window (the day closed less than
    late_seconds ago), so the login must count."""
    enroll(APP, "a", "b")
    clock.set(at(2026, 11, 26, 22, 0))
    engine.record_login(APP, "a")
    clock.set(at(2026, 11, 27, 0, 9, 59) + timedelta(milliseconds=500))
    inside = engine.record_login(APP, "b", at(2026, 11, 26, 23, 59))
    assert (inside.counted, inside.late, inside.dau) == (True, False, 2)


def test_a_day_still_open_by_half_a_second_counts_without_a_late_window(make_engine, clock, enroll):
    enroll(APP, "last-minute")
    engine = make_engine(late_seconds=0)
    clock.set(at(2026, 11, 26, 23, 59, 59) + timedelta(milliseconds=500))
    login = engine.record_login(APP, "last-minute")
    assert (login.day, login.counted, login.late) == (TODAY, True, False)


def test_the_late_window_is_a_setting(make_engine, clock, enroll):
    enroll(APP, "a", "b")
    engine = make_engine(late_seconds=3600)
    clock.set(at(2026, 11, 27, 0, 59))
    assert engine.record_login(APP, "a", at(2026, 11, 26, 23, 0)).counted is True
    clock.set(at(2026, 11, 27, 1, 0, 1))
    assert engine.record_login(APP, "b", at(2026, 11, 26, 23, 0)).late is True


def test_an_event_time_more_than_five_minutes_ahead_is_refused(engine, clock, enroll):
    enroll(APP, "a", "b")
    assert engine.record_login(APP, "a", clock.now() + timedelta(minutes=5)).counted is True
    with pytest.raises(InvalidRequest) as caught:
        engine.record_login(APP, "b", clock.now() + timedelta(minutes=5, seconds=1))
    assert caught.value.field == "at"
    assert "future" in caught.value.message
    assert engine.monthly_usage(APP, NOVEMBER).dau == {TODAY: 1}


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 11, 26, 12, 0),  # naive: which timezone?
        date(2026, 11, 26),
        "2026-11-26T12:00:00+08:00",
        1795665600,
    ],
    ids=["naive", "date", "string", "timestamp"],
)
def test_an_event_time_must_be_an_aware_datetime(engine, when, enroll):
    enroll(APP, "a")
    with pytest.raises(InvalidRequest) as caught:
        engine.record_login(APP, "a", when)
    assert caught.value.field == "at"
    assert engine.monthly_usage(APP, NOVEMBER).dau == {}


@pytest.mark.parametrize("user", ["", "x" * 33, "tab\there", 42])
def test_a_bad_user_id_is_refused_before_counting(engine, user, enroll):
    enroll(APP, str(user))  # an account by that name would count: the id check refuses first
    with pytest.raises(InvalidRequest):
        engine.record_login(APP, user)
    assert engine.monthly_usage(APP, NOVEMBER).peak_dau == 0


def test_a_bad_month_is_refused(engine):
    for month in ["2026-13", "2026-1", "November", 202611]:
        with pytest.raises(InvalidRequest) as caught:
            engine.monthly_usage(APP, month)
        assert caught.value.field == "month"


# -- what expires when ----------------------------------------------------------------------------


def test_the_day_set_expires_once_the_late_window_closes(engine, clock, client, enroll):
    enroll(APP, "a", "b")
    keys = keys_of(engine)
    engine.record_login(APP, "a")
    # from 12:00 to the end of the day, plus the late window
    expected = 12 * 3600 + LATE_SECONDS
    ttl = client.ttl(keys.dau(TODAY))
    assert 0 < ttl <= expected
    assert ttl > expected - 60
    # later logins do not push the expiry out
    clock.set(at(2026, 11, 26, 20, 0))
    engine.record_login(APP, "b")
    assert expected - 60 < client.ttl(keys.dau(TODAY)) <= expected


def test_a_first_login_inside_the_late_window_expires_with_the_window(
    engine, clock, client, enroll
):
    enroll(APP, "a")
    clock.set(at(2026, 12, 1, 0, 5))
    engine.record_login(APP, "a", at(2026, 11, 30, 23, 59))
    ttl = client.ttl(keys_of(engine).dau(date(2026, 11, 30)))
    assert 0 < ttl <= LATE_SECONDS - 300
    assert ttl > LATE_SECONDS - 300 - 60


def test_the_month_hash_is_kept_at_least_13_months_after_the_month(engine, clock, client, enroll):
    enroll(APP, "a", "b")
    meter = keys_of(engine).meter("2026-11")
    engine.record_login(APP, "a")
    # November ends on December 1 00:00 Beijing, 4.5 days after the clock's now
    expected = int((timedelta(days=4, hours=12) + timedelta(days=RETENTION_DAYS)).total_seconds())
    ttl = client.ttl(meter)
    assert 0 < ttl <= expected
    assert ttl > expected - 60
    thirteen_months = int((timedelta(days=4, hours=12) + timedelta(days=396)).total_seconds())
    assert ttl > thirteen_months
    # each write keeps it from the month's end, by the engine's clock
    clock.set(at(2026, 11, 28, 12, 0))
    engine.record_login(APP, "b")
    expected = int((timedelta(days=2, hours=12) + timedelta(days=RETENTION_DAYS)).total_seconds())
    assert expected - 60 < client.ttl(meter) <= expected


def test_a_bandwidth_record_sets_the_month_hash_expiry_too(engine, client):
    meter = keys_of(engine).meter("2026-11")
    engine.record_bandwidth(APP, "1.5")
    expected = int((timedelta(days=4, hours=12) + timedelta(days=RETENTION_DAYS)).total_seconds())
    assert expected - 60 < client.ttl(meter) <= expected


def test_a_group_change_sets_the_month_hash_expiry_too(engine, client, enroll):
    enroll(APP, "owner")
    meter = keys_of(engine).meter("2026-11")
    engine.create_group(APP, "g", "Public", "owner")
    expected = int((timedelta(days=4, hours=12) + timedelta(days=RETENTION_DAYS)).total_seconds())
    assert expected - 60 < client.ttl(meter) <= expected


def test_a_missing_day_set_does_not_shrink_the_days_count(make_engine, clock, client, enroll):
    """Worker A's clock runs 30 s ahead of worker B's: A's first login of the day gives the
    day's set a TTL 30 s short, so Redis drops it inside B's late window. (Redis would also
    drop it under a ``volatile-*`` eviction policy.) B's late-window login must not then
    overwrite the day's recorded count with a fresh set's 1."""
    enroll(APP, "u1", "u2", "u3", "u4", "u5", "straggler")
    ahead = ManualClock(clock.now() + timedelta(seconds=30))
    worker_a = make_engine(own_clock=ahead)
    worker_b = make_engine()
    for user in ["u1", "u2", "u3", "u4", "u5"]:
        worker_a.record_login(APP, user, clock.now())
    day_set = keys_of(worker_a).dau(TODAY)
    assert client.ttl(day_set) <= 12 * 3600 + LATE_SECONDS - 30

    clock.set(at(2026, 11, 27, 0, 9, 50))  # B: 590 s after the day closed
    client.delete(day_set)  # what Redis did at 00:09:30 by B's clock (A's TTL ran out)
    worker_b.record_login(APP, "straggler", at(2026, 11, 26, 23, 59))

    usage = worker_b.monthly_usage(APP, NOVEMBER)
    assert usage.peak_dau == 5
    assert 5 <= usage.dau[TODAY] <= 6  # the day had 5 users; it cannot have fewer now


# -- the month's peak of live groups ------------------------------------------------------------


def test_peak_groups_within_a_month(engine, clock, enroll):
    enroll(APP, "o0", "o1", "o2", "o3")
    clock.set(at(2026, 11, 3, 10, 0))
    for n in range(3):
        engine.create_group(APP, f"g{n}", "Public", f"o{n}")
    clock.set(at(2026, 11, 4, 10, 0))
    engine.destroy_group(APP, "g0")
    engine.destroy_group(APP, "g1")
    clock.set(at(2026, 11, 5, 10, 0))
    engine.create_group(APP, "g3", "Private", "o3")
    usage = engine.monthly_usage(APP, NOVEMBER)
    assert (usage.peak_groups, usage.peak_groups_day) == (3, date(2026, 11, 3))
    # a destroy of a group that does not exist changes nothing
    assert engine.destroy_group(APP, "nothing").existed is False
    assert engine.monthly_usage(APP, NOVEMBER).peak_groups == 3


def test_every_group_type_counts_toward_the_peak(engine, clock, enroll):
    enroll(APP, "o")
    engine.create_group(APP, "work", "Work", "o")
    engine.create_group(APP, "public", "Public", "o")
    engine.create_group(APP, "meeting", "Meeting", "o")
    engine.create_group(APP, "live", "AVChatRoom", "o")
    usage = engine.monthly_usage(APP, NOVEMBER)
    assert (usage.peak_groups, usage.peak_groups_day) == (4, TODAY)
    assert engine.usage(APP).groups == 4


def test_peak_groups_across_month_boundaries(engine, clock, client, enroll):
    enroll(APP, "o1", "o2", "o3", "o4", "o5", "o6", "someone")
    clock.set(at(2026, 10, 10, 12, 0))
    engine.create_group(APP, "g1", "Public", "o1")
    engine.create_group(APP, "g2", "Private", "o2")
    engine.create_group(APP, "g3", "Meeting", "o3")
    engine.create_group(APP, "av", "AVChatRoom", "o4")
    clock.set(at(2026, 10, 20, 12, 0))
    engine.destroy_group(APP, "g3")
    october = engine.monthly_usage(APP, "2026-10")
    assert (october.peak_groups, october.peak_groups_day) == (4, date(2026, 10, 10))

    # November: nothing created or destroyed; a login makes the month's hash exist
    clock.set(at(2026, 11, 26, 12, 0))
    engine.record_login(APP, "someone")
    november = engine.monthly_usage(APP, NOVEMBER)
    assert (november.peak_groups, november.peak_groups_day) == (3, date(2026, 11, 1))

    # December opens with a destroy: its peak is the count just before it, from December 1
    clock.set(at(2026, 12, 1, 0, 0, 1))
    engine.destroy_group(APP, "g1")
    december = engine.monthly_usage(APP, DECEMBER)
    assert (december.peak_groups, december.peak_groups_day) == (3, date(2026, 12, 1))
    clock.set(at(2026, 12, 3, 9, 0))
    engine.create_group(APP, "n1", "Public", "o5")
    assert engine.monthly_usage(APP, DECEMBER).peak_groups == 3
    engine.create_group(APP, "n2", "Public", "o6")
    december = engine.monthly_usage(APP, DECEMBER)
    assert (december.peak_groups, december.peak_groups_day) == (4, date(2026, 12, 3))
    assert engine.usage(APP).groups == 4

    # November, now in the past, takes what December started from; October is unchanged
    november = engine.monthly_usage(APP, NOVEMBER)
    assert (november.peak_groups, november.peak_groups_day) == (3, date(2026, 11, 1))
    october = engine.monthly_usage(APP, "2026-10")
    assert (october.peak_groups, october.peak_groups_day) == (4, date(2026, 10, 10))
    assert client.hget(keys_of(engine).meter("2026-10"), "groups_start") == "0"
    assert client.hget(keys_of(engine).meter("2026-12"), "groups_start") == "3"


def test_a_quiet_month_long_after_the_last_change_keeps_its_groups(engine, clock, enroll):
    enroll(APP, "o")
    # Groups from mid-2025; nothing changes until September 2026: August's count is exact,
    # whatever the retention of the 2025 months.
    clock.set(at(2025, 6, 10, 12, 0))
    for n in range(3):
        engine.create_group(APP, f"old{n}", "Public", "o")
    clock.set(at(2026, 9, 2, 12, 0))
    engine.create_group(APP, "new", "Public", "o")
    clock.set(at(2026, 10, 15, 12, 0))
    august = engine.monthly_usage(APP, "2026-08")
    assert (august.peak_groups, august.peak_groups_day) == (3, date(2026, 8, 1))
    september = engine.monthly_usage(APP, "2026-09")
    assert (september.peak_groups, september.peak_groups_day) == (4, date(2026, 9, 2))
    october = engine.monthly_usage(APP, "2026-10")
    assert (october.peak_groups, october.peak_groups_day) == (4, date(2026, 10, 1))
    assert engine.monthly_usage(APP, "2026-12").peak_groups == 0  # not begun


def test_a_month_without_any_history_uses_the_live_count(engine, clock, client, enroll):
    enroll(APP, "o")
    engine.create_group(APP, "g1", "Public", "o")
    engine.create_group(APP, "g2", "Public", "o")
    # a month before any group existed owes nothing: November started from 0
    assert engine.monthly_usage(APP, "2026-09").peak_groups == 0
    client.delete(keys_of(engine).meter("2026-11"))  # the month's hash is gone
    clock.set(at(2026, 12, 5, 12, 0))
    december = engine.monthly_usage(APP, DECEMBER)
    assert (december.peak_groups, december.peak_groups_day) == (2, date(2026, 12, 1))


# -- AV bandwidth ---------------------------------------------------------------------------------


def test_bandwidth_keeps_each_days_peak(engine, clock):
    clock.set(at(2026, 11, 26, 0, 5))  # yesterday's last reading, inside the late window
    assert engine.record_bandwidth(APP, 0.5, at(2026, 11, 25, 23, 59)) == Decimal("0.5")
    clock.set(at(2026, 11, 26, 12, 0))
    with pytest.raises(InvalidRequest) as late:  # now yesterday is final
        engine.record_bandwidth(APP, 9, at(2026, 11, 25, 23, 59))
    assert late.value.field == "at"
    assert engine.record_bandwidth(APP, "2.5") == Decimal("2.5")
    assert engine.record_bandwidth(APP, 1) == Decimal("2.5")  # lower, later: still 2.5
    assert engine.record_bandwidth(APP, Decimal("3.75")) == Decimal("3.75")
    assert engine.record_bandwidth(APP, "3.750") == Decimal("3.75")
    clock.set(at(2026, 11, 27, 8, 0))
    assert engine.record_bandwidth(APP, "10") == Decimal("10")
    assert engine.record_bandwidth(APP, "9.99") == Decimal("10")
    usage = engine.monthly_usage(APP, NOVEMBER)
    assert usage.bandwidth == {
        date(2026, 11, 25): Decimal("0.5"),
        TODAY: Decimal("3.75"),
        date(2026, 11, 27): Decimal("10"),
    }


def test_bandwidth_days_follow_beijing_time(engine, clock):
    clock.set(at(2026, 12, 1, 0, 5))
    engine.record_bandwidth(APP, "4", datetime(2026, 11, 30, 16, 3, tzinfo=UTC))  # Dec 1
    engine.record_bandwidth(APP, "6", datetime(2026, 11, 30, 15, 59, tzinfo=UTC))  # Nov 30
    assert engine.monthly_usage(APP, DECEMBER).bandwidth == {date(2026, 12, 1): Decimal("4")}
    assert engine.monthly_usage(APP, NOVEMBER).bandwidth == {date(2026, 11, 30): Decimal("6")}


@pytest.mark.parametrize(
    "mbps",
    [-1, "-0.1", Decimal("-2"), "NaN", float("nan"), "Infinity", float("inf"), True, False, "abc"],
)
def test_bad_bandwidth_values_are_refused(engine, mbps):
    engine.record_bandwidth(APP, "1")
    with pytest.raises(InvalidRequest) as caught:
        engine.record_bandwidth(APP, mbps)
    assert caught.value.field == "mbps"
    assert engine.monthly_usage(APP, NOVEMBER).bandwidth == {TODAY: Decimal("1")}


def test_bandwidth_event_time_is_checked_like_a_logins(engine, clock):
    with pytest.raises(InvalidRequest) as caught:
        engine.record_bandwidth(APP, "1", datetime(2026, 11, 26, 12, 0))
    assert caught.value.field == "at"
    with pytest.raises(InvalidRequest):
        engine.record_bandwidth(APP, "1", clock.now() + timedelta(minutes=6))
    assert engine.monthly_usage(APP, NOVEMBER).bandwidth == {}


# -- history ------------------------------------------------------------------------------------


def test_history_cutoff_is_seven_days_unless_extended(engine, clock):
    now = clock.now()
    assert engine.history_cutoff(APP) == now - timedelta(days=7)  # trial
    earlier = now - timedelta(hours=3)
    assert engine.history_cutoff(APP, earlier) == earlier - timedelta(days=7)
    engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 20), months=2)
    assert engine.history_cutoff(APP) == now - timedelta(days=7)
    engine.add_expansion(APP, "history_extension", date(2026, 11, 20), days=30)
    assert engine.history_cutoff(APP) == now - timedelta(days=30)
    engine.add_expansion(APP, "history_extension", date(2026, 11, 22), days=90)
    assert engine.history_cutoff(APP) == now - timedelta(days=90)  # the longer one wins
    # the extensions end on December 19 and 21; pro runs to January 19
    clock.set(at(2026, 12, 21, 12, 0))
    assert engine.history_cutoff(APP) == clock.now() - timedelta(days=90)
    clock.set(at(2026, 12, 22, 0, 30))
    assert engine.history_cutoff(APP) == clock.now() - timedelta(days=7)


def test_history_cutoff_checks_its_instant(engine, clock):
    with pytest.raises(InvalidRequest) as caught:
        engine.history_cutoff(APP, datetime(2026, 11, 26, 12, 0))
    assert caught.value.field == "now"
    with pytest.raises(InvalidRequest):
        engine.history_cutoff(APP, clock.now() + timedelta(minutes=6))


# -- the bill, priced by the engine -------------------------------------------------------------


def bill_lines(bill: Any) -> list[tuple[str, Decimal, Decimal, Decimal]]:
    return [(i.item, i.quantity, i.unit_price, i.amount) for i in bill.items]


def test_bill_for_a_month_with_a_peak_of_250001_dau(engine, client, enroll):
    enroll(APP, "a-real-login")
    engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 3))
    engine.add_expansion(APP, "group_members_2000", date(2026, 11, 10))
    engine.record_login(APP, "a-real-login")
    # Logging 250,001 users in through record_login would take minutes: for this scale test
    # only, write the month's metering fields the way record_login.lua leaves them.
    client.hset(
        keys_of(engine).meter("2026-11"),
        mapping={"dau:2026-11-20": 250_001, "peak_dau": 250_001, "peak_dau_day": "2026-11-20"},
    )
    bill = engine.bill(APP, "2026-11")
    # 999 package + 500 expansion + 150,001 over the included 100,000: 2 started blocks
    assert bill_lines(bill) == [
        ("package:pro", 1, Decimal(999), Decimal("999.00")),
        ("expansion:group_members_2000", 1, Decimal(500), Decimal("500.00")),
        ("dau_overage", 2, Decimal(10000), Decimal("20000.00")),
    ]
    assert bill.total == Decimal("21499.00")
    assert "250001 on 2026-11-20" in bill.items[2].detail
    answer = BillView.of(bill).model_dump(mode="json")
    assert (answer["app_id"], answer["month"], answer["currency"]) == (APP, "2026-11", "CNY")
    assert answer["total"] == 21499.0
    # December: nothing bought, nothing measured yet
    assert engine.bill(APP, "2026-12").total == Decimal("0.00")


def test_bill_prices_peak_groups_and_bandwidth_from_the_engines_records(
    engine, clock, client, enroll
):
    enroll(APP, "o")
    engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 3))
    engine.record_bandwidth(APP, "2.5")  # 3 Mbps-days
    clock.set(at(2026, 11, 27, 9, 0))
    engine.record_bandwidth(APP, "0.4")  # 1
    engine.create_group(APP, "g", "Public", "o")
    bill = engine.bill(APP, NOVEMBER)
    assert bill_lines(bill) == [
        ("package:pro", 1, Decimal(999), Decimal("999.00")),
        ("av_bandwidth", 4, Decimal(2), Decimal("8.00")),
    ]  # 1 live group is far below the 100,000 free ones
    # peak groups above the free 100,000 (scale: written directly, as above)
    client.hset(keys_of(engine).meter("2026-11"), mapping={"peak_groups": 100_001})
    assert engine.bill(APP, NOVEMBER).total == Decimal("2007.00")


def tiny_catalog() -> Catalog:
    """The shipped catalog with pro including only 2 DAU and DAU overage billed per user."""
    data = load_catalog().model_dump(mode="json")
    data["editions"]["pro"]["price"] = "100"
    data["editions"]["pro"]["included_dau"] = 2
    data["metered"]["dau_overage"] = {"price": "7", "block": 1, "rounding": "ceil"}
    return Catalog.model_validate(data)


def test_bill_with_small_numbers_counted_through_record_login(make_engine, clock, enroll):
    enroll(APP, "u1", "u2", "u3", "u4", "u5")
    engine = make_engine(catalog=tiny_catalog())
    clock.set(at(2026, 11, 20, 9, 0))
    engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 3))
    for _ in range(3):
        for user in ["u1", "u2", "u3", "u4", "u5"]:
            engine.record_login(APP, user)
    clock.set(at(2026, 11, 21, 9, 0))
    for user in ["u1", "u2", "u3", "u1"]:
        engine.record_login(APP, user)
    usage = engine.monthly_usage(APP, NOVEMBER)
    assert usage.dau == {date(2026, 11, 20): 5, date(2026, 11, 21): 3}
    assert (usage.peak_dau, usage.peak_dau_day) == (5, date(2026, 11, 20))
    bill = engine.bill(APP, NOVEMBER)
    # peak 5, 2 included: 3 blocks of 1 at 7
    assert bill_lines(bill) == [
        ("package:pro", 1, Decimal(100), Decimal("100.00")),
        ("dau_overage", 3, Decimal(7), Decimal("21.00")),
    ]
    assert bill.total == Decimal("121.00")
    # December (pro runs to December 2): a peak of exactly the included 2 owes nothing
    clock.set(at(2026, 12, 1, 9, 0))
    engine.record_login(APP, "u1")
    engine.record_login(APP, "u2")
    december = engine.bill(APP, DECEMBER)
    assert december.items == ()
    engine.record_login(APP, "u3")
    assert bill_lines(engine.bill(APP, DECEMBER)) == [
        ("dau_overage", 1, Decimal(7), Decimal("7.00"))
    ]


def test_a_past_bill_does_not_change_when_the_plan_does(engine, clock, client, enroll):
    enroll(APP, "u1")
    clock.set(at(2026, 11, 3, 9, 0))
    engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 3))
    engine.add_expansion(APP, "group_members_2000", date(2026, 11, 10))
    history = engine.add_expansion(APP, "history_extension", date(2026, 11, 3), 3, days=30)
    engine.record_login(APP, "u1")
    november = [
        ("package:pro", 1, Decimal(999), Decimal("999.00")),
        ("expansion:group_members_2000", 1, Decimal(500), Decimal("500.00")),
        ("history_extension", 1, Decimal(500), Decimal("500.00")),  # 1 started block of DAU
    ]
    assert bill_lines(engine.bill(APP, NOVEMBER)) == november

    # December 5: back to trial; December 10: the history extension removed
    clock.set(at(2026, 12, 5, 9, 0))
    engine.record_login(APP, "u1")
    engine.set_edition(APP, "trial")
    assert bill_lines(engine.bill(APP, NOVEMBER)) == november
    clock.set(at(2026, 12, 10, 9, 0))
    engine.set_edition(APP, "pro", purchased_on=date(2026, 12, 10))
    assert engine.remove_expansion(APP, history.id) is True
    assert bill_lines(engine.bill(APP, NOVEMBER)) == november
    # December: the new purchase; usage billed (pro was in effect), history until December 9
    assert bill_lines(engine.bill(APP, DECEMBER)) == [
        ("package:pro", 1, Decimal(999), Decimal("999.00")),
        ("history_extension", 1, Decimal(500), Decimal("500.00")),
    ]
    # January: the removed extension (bought until 2027-02-02) no longer bills
    clock.set(at(2027, 1, 5, 9, 0))
    engine.record_login(APP, "u1")
    assert engine.bill(APP, "2027-01").items == ()
    ledger = client.lrange(keys_of(engine).ledger, 0, -1)
    assert [json.loads(entry)["event"] for entry in ledger] == [
        "edition",
        "expansion",
        "expansion",
        "edition",
        "edition",
        "removal",
    ]


def test_a_renewal_in_the_same_month_bills_a_second_period(engine, clock):
    clock.set(at(2026, 11, 3, 9, 0))
    engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 3))
    clock.set(at(2026, 11, 25, 9, 0))
    engine.renew(APP)
    assert bill_lines(engine.bill(APP, NOVEMBER)) == [
        ("package:pro", 2, Decimal(999), Decimal("1998.00"))
    ]
    assert engine.bill(APP, DECEMBER).items == ()  # the renewal was bought in November


def test_a_trial_app_is_billed_nothing_however_busy(engine, enroll):
    enroll(APP, "a", "b", "c")
    for user in ["a", "b", "c"]:
        engine.record_login(APP, user)
    engine.record_bandwidth(APP, "50")
    assert engine.bill(APP, NOVEMBER).items == ()


def test_a_month_is_not_taken_from_an_instant_without_the_billing_timezone():
    # 2026-11-30 20:00 UTC is already December 1 in Beijing: Month.of says so, parse refuses
    instant = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
    assert Month.of(instant, ZoneInfo("Asia/Shanghai")) == Month(2026, 12)
    with pytest.raises(InvalidRequest) as caught:
        Month.parse(instant)
    assert caught.value.field == "month"
    assert Month.parse(date(2026, 11, 30)) == Month(2026, 11)


# -- the purchase ledger's replay: cases a review found ------------------------------------------


def test_an_app_set_up_before_the_ledger_keeps_its_past_bills(engine, clock, client):
    # The plan fields as an app set up before the ledger existed has them: no ledger entry.
    keys = keys_of(engine)
    periods = consecutive_periods(date(2026, 1, 5), 1)
    grant = ExpansionGrant("a1b2c3", "group_members_2000", consecutive_periods(date(2026, 1, 5), 1))
    client.hset(
        keys.plan,
        mapping={
            EDITION_FIELD: edition_field_value("pro", periods, (Purchase(date(2026, 1, 5), 1),)),
            expansion_field(grant.id): expansion_field_value(grant),
        },
    )
    january = [
        ("package:pro", 1, Decimal(999), Decimal("999.00")),
        ("expansion:group_members_2000", 1, Decimal(500), Decimal("500.00")),
    ]
    clock.set(at(2026, 2, 3, 9, 0))
    assert bill_lines(engine.bill(APP, "2026-01")) == january
    engine.renew(APP)  # the first ledger entry: a baseline of the plan before it goes first
    assert bill_lines(engine.bill(APP, "2026-01")) == january
    assert bill_lines(engine.bill(APP, "2026-02")) == [
        ("package:pro", 1, Decimal(999), Decimal("999.00"))
    ]
    assert json.loads(client.lindex(keys.ledger, 0))["event"] == "baseline"


def test_a_prepaid_expansion_stays_on_its_month_whatever_the_edition_later(engine, clock):
    # Bought in January while pro only starts in February: January has no paid day.
    clock.set(at(2026, 1, 25, 9, 0))
    engine.set_edition(APP, "pro", purchased_on=date(2026, 2, 1))
    engine.add_expansion(APP, "av_chatrooms_unlimited", date(2026, 1, 25))
    january = [("expansion:av_chatrooms_unlimited", 1, Decimal(1000), Decimal("1000.00"))]
    assert bill_lines(engine.bill(APP, "2026-01")) == january
    clock.set(at(2026, 3, 5, 9, 0))
    engine.set_edition(APP, "trial")
    assert bill_lines(engine.bill(APP, "2026-01")) == january
    assert bill_lines(engine.bill(APP, "2026-02")) == [
        ("package:pro", 1, Decimal(999), Decimal("999.00"))
    ]


def test_a_history_extension_is_billed_only_for_paid_days_it_was_in_effect(engine, clock, enroll):
    enroll(APP, "u1")
    clock.set(at(2026, 2, 1, 9, 0))
    engine.set_edition(APP, "pro", purchased_on=date(2026, 2, 1))  # to 2026-02-28
    engine.record_login(APP, "u1")
    clock.set(at(2026, 2, 5, 9, 0))
    engine.add_expansion(APP, "history_extension", date(2026, 2, 20), days=30)
    clock.set(at(2026, 2, 10, 9, 0))
    engine.set_edition(APP, "trial")  # pro's paid days end on 2026-02-09
    assert bill_lines(engine.bill(APP, "2026-02")) == [
        ("package:pro", 1, Decimal(999), Decimal("999.00"))
    ]


def test_renewing_an_edition_bought_ahead_continues_after_it(engine, clock):
    clock.set(at(2026, 1, 25, 9, 0))
    engine.set_edition(APP, "pro", purchased_on=date(2026, 2, 1))
    clock.set(at(2026, 1, 26, 9, 0))
    plan = engine.renew(APP)
    assert [(p.starts_on, p.ends_on) for p in plan.periods] == [
        (date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 31)),
    ]


def two_paid_editions() -> Catalog:
    """The shipped catalog plus an `enterprise` edition at 5000 including 300,000 DAU."""
    data = load_catalog().model_dump(mode="json")
    enterprise = dict(data["editions"]["pro"], title="Enterprise", price="5000")
    data["editions"]["enterprise"] = {**enterprise, "included_dau": 300_000}
    return Catalog.model_validate(data)


def test_an_upgrade_within_a_month_bills_both_packages(make_engine, clock, client, enroll):
    enroll(APP, "u1")
    engine = make_engine(catalog=two_paid_editions())
    clock.set(at(2026, 1, 1, 9, 0))
    engine.set_edition(APP, "pro", purchased_on=date(2026, 1, 1))
    engine.record_login(APP, "u1")
    clock.set(at(2026, 1, 12, 9, 0))
    engine.set_edition(APP, "enterprise", purchased_on=date(2026, 1, 12))  # 20 of 31 days
    client.hset(keys_of(engine).meter("2026-01"), mapping={"peak_dau": 250_001})  # scale
    # enterprise had the most paid days in January: its 300,000 included DAU cover the peak
    assert bill_lines(engine.bill(APP, "2026-01")) == [
        ("package:enterprise", 1, Decimal(5000), Decimal("5000.00")),
        ("package:pro", 1, Decimal(999), Decimal("999.00")),
    ]


def test_a_quiet_month_looks_as_far_ahead_as_the_retention_keeps(make_engine, clock, enroll):
    enroll(APP, "o")
    engine = make_engine(metering_retention_days=800)
    clock.set(at(2026, 1, 5, 9, 0))
    for group in ("g1", "g2", "g3"):
        engine.create_group(APP, group, "Public", "o")
    clock.set(at(2027, 5, 10, 9, 0))  # 15 quiet months later, two go
    engine.destroy_group(APP, "g1")
    engine.destroy_group(APP, "g2")
    clock.set(at(2027, 6, 1, 9, 0))
    assert engine.monthly_usage(APP, "2026-02").peak_groups == 3
