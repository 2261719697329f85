"""The T..T-1 rule, consecutive months, contiguous spans and dates in the billing timezone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from limiter.periods import (
    Period,
    consecutive_periods,
    contiguous_span,
    day_end,
    local_date,
    one_month_end,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def d(text: str) -> date:
    return date.fromisoformat(text)


def p(start: str, end: str) -> Period:
    return Period(d(start), d(end))


# -- one_month_end ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("starts_on", "ends_on"),
    [
        # the examples of plans.md
        ("2026-01-15", "2026-02-14"),
        ("2026-01-31", "2026-02-28"),
        ("2026-03-01", "2026-03-31"),
        ("2026-12-20", "2027-01-19"),
        # ordinary days
        ("2026-01-01", "2026-01-31"),
        ("2026-02-01", "2026-02-28"),
        ("2026-02-15", "2026-03-14"),
        ("2026-04-10", "2026-05-09"),
        ("2026-01-28", "2026-02-27"),
        # month ends into short months (no day T next month: the month's last day)
        ("2026-01-29", "2026-02-28"),
        ("2026-01-30", "2026-02-28"),
        ("2026-03-29", "2026-04-28"),
        ("2026-03-30", "2026-04-29"),
        ("2026-03-31", "2026-04-30"),
        ("2026-05-31", "2026-06-30"),
        ("2026-08-31", "2026-09-30"),
        ("2026-10-31", "2026-11-30"),
        # into long months
        ("2026-04-30", "2026-05-29"),
        ("2026-06-30", "2026-07-29"),
        ("2026-07-31", "2026-08-30"),
        ("2026-02-28", "2026-03-27"),
        # leap years: February 2028 has 29 days
        ("2028-01-28", "2028-02-27"),
        ("2028-01-29", "2028-02-28"),
        ("2028-01-30", "2028-02-29"),
        ("2028-01-31", "2028-02-29"),
        ("2028-02-29", "2028-03-28"),
        ("2028-02-01", "2028-02-29"),
        ("2024-01-31", "2024-02-29"),
        ("2000-01-30", "2000-02-29"),
        # 2100 is not a leap year (divisible by 100, not by 400)
        ("2100-01-29", "2100-02-28"),
        ("2100-01-30", "2100-02-28"),
        ("2100-01-31", "2100-02-28"),
        # year end
        ("2026-12-01", "2026-12-31"),
        ("2026-12-31", "2027-01-30"),
        ("2026-11-30", "2026-12-29"),
        ("2027-12-31", "2028-01-30"),
    ],
)
def test_one_month_end(starts_on: str, ends_on: str) -> None:
    assert one_month_end(d(starts_on)) == d(ends_on)


# -- consecutive_periods ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("starts_on", "months", "expected"),
    [
        ("2026-01-15", 1, [p("2026-01-15", "2026-02-14")]),
        ("2026-01-31", 1, [p("2026-01-31", "2026-02-28")]),
        (
            "2026-01-31",
            2,
            [p("2026-01-31", "2026-02-28"), p("2026-03-01", "2026-03-31")],
        ),
        (
            "2026-01-15",
            3,
            [
                p("2026-01-15", "2026-02-14"),
                p("2026-02-15", "2026-03-14"),
                p("2026-03-15", "2026-04-14"),
            ],
        ),
        (
            "2026-11-20",
            3,
            [
                p("2026-11-20", "2026-12-19"),
                p("2026-12-20", "2027-01-19"),
                p("2027-01-20", "2027-02-19"),
            ],
        ),
        (
            "2028-01-30",
            2,
            [p("2028-01-30", "2028-02-29"), p("2028-03-01", "2028-03-31")],
        ),
        (
            "2026-03-31",
            3,
            [
                p("2026-03-31", "2026-04-30"),
                p("2026-05-01", "2026-05-31"),
                p("2026-06-01", "2026-06-30"),
            ],
        ),
    ],
)
def test_consecutive_periods(starts_on: str, months: int, expected: list[Period]) -> None:
    periods = consecutive_periods(d(starts_on), months)
    assert periods == tuple(expected)


@pytest.mark.parametrize(
    ("starts_on", "months", "last_day"),
    [
        ("2026-01-15", 3, "2026-04-14"),
        ("2026-01-31", 2, "2026-03-31"),
        ("2026-01-01", 12, "2026-12-31"),
        ("2026-12-20", 12, "2027-12-19"),
    ],
)
def test_consecutive_periods_are_gapless(starts_on: str, months: int, last_day: str) -> None:
    periods = consecutive_periods(d(starts_on), months)
    assert len(periods) == months
    assert periods[0].starts_on == d(starts_on)
    assert periods[-1].ends_on == d(last_day)
    for previous, following in pairwise(periods):
        assert following.starts_on == previous.ends_on + timedelta(days=1)
        assert following.ends_on == one_month_end(following.starts_on)


@pytest.mark.parametrize("months", [0, -1, -12])
def test_consecutive_periods_needs_one_month_at_least(months: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        consecutive_periods(d("2026-01-15"), months)


# -- Period.contains --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "inside"),
    [
        ("2026-01-14", False),
        ("2026-01-15", True),
        ("2026-02-01", True),
        ("2026-02-14", True),
        ("2026-02-15", False),
    ],
)
def test_period_contains_both_ends(day: str, inside: bool) -> None:
    assert p("2026-01-15", "2026-02-14").contains(d(day)) is inside


# -- contiguous_span --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("periods", "today", "expected"),
    [
        # nothing at all, or only future periods
        ([], "2026-01-15", None),
        ([p("2026-02-01", "2026-02-28")], "2026-01-31", None),
        # one period: today inside, on its ends, after it
        ([p("2026-01-15", "2026-02-14")], "2026-01-15", p("2026-01-15", "2026-02-14")),
        ([p("2026-01-15", "2026-02-14")], "2026-02-14", p("2026-01-15", "2026-02-14")),
        ([p("2026-01-15", "2026-02-14")], "2026-06-01", p("2026-01-15", "2026-02-14")),
        # consecutive periods merge into one span, also when given out of order
        (
            list(consecutive_periods(d("2026-01-31"), 2)),
            "2026-02-10",
            p("2026-01-31", "2026-03-31"),
        ),
        (
            list(consecutive_periods(d("2026-01-15"), 3)),
            "2026-04-14",
            p("2026-01-15", "2026-04-14"),
        ),
        (
            [p("2026-02-15", "2026-03-14"), p("2026-01-15", "2026-02-14")],
            "2026-01-20",
            p("2026-01-15", "2026-03-14"),
        ),
        # a span containing a future period merges it too (bought ahead)
        (
            list(consecutive_periods(d("2026-01-15"), 3)),
            "2026-01-15",
            p("2026-01-15", "2026-04-14"),
        ),
        # overlapping periods merge; a period inside another does not shorten it
        (
            [p("2026-01-01", "2026-03-31"), p("2026-02-01", "2026-02-28")],
            "2026-03-15",
            p("2026-01-01", "2026-03-31"),
        ),
        (
            [p("2026-01-15", "2026-02-14"), p("2026-02-01", "2026-03-10")],
            "2026-03-10",
            p("2026-01-15", "2026-03-10"),
        ),
        # a gap of one day keeps spans apart
        (
            [p("2026-01-15", "2026-02-14"), p("2026-02-16", "2026-03-15")],
            "2026-02-15",
            p("2026-01-15", "2026-02-14"),
        ),
        (
            [p("2026-01-15", "2026-02-14"), p("2026-02-16", "2026-03-15")],
            "2026-02-16",
            p("2026-02-16", "2026-03-15"),
        ),
        # lapsed: the last span that started; a future span does not count yet
        (
            [p("2026-01-15", "2026-02-14"), p("2026-05-01", "2026-05-31")],
            "2026-04-30",
            p("2026-01-15", "2026-02-14"),
        ),
        (
            [p("2026-01-15", "2026-02-14"), p("2026-05-01", "2026-05-31")],
            "2026-07-01",
            p("2026-05-01", "2026-05-31"),
        ),
        # across the year end
        (
            list(consecutive_periods(d("2026-12-20"), 2)),
            "2027-01-20",
            p("2026-12-20", "2027-02-19"),
        ),
    ],
)
def test_contiguous_span(periods: list[Period], today: str, expected: Period | None) -> None:
    assert contiguous_span(tuple(periods), d(today)) == expected


# -- local_date and day_end -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "tz", "expected"),
    [
        # 2026-11-30T15:59:59Z is 23:59:59 on Nov 30 in Beijing; one second later is Dec 1
        (datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC), SHANGHAI, "2026-11-30"),
        (datetime(2026, 11, 30, 16, 0, 0, tzinfo=UTC), SHANGHAI, "2026-12-01"),
        (datetime(2026, 11, 30, 16, 0, 0, tzinfo=UTC), ZoneInfo("UTC"), "2026-11-30"),
        # year end
        (datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC), SHANGHAI, "2026-12-31"),
        (datetime(2026, 12, 31, 16, 0, 0, tzinfo=UTC), SHANGHAI, "2027-01-01"),
        # leap day
        (datetime(2028, 2, 28, 16, 0, 0, tzinfo=UTC), SHANGHAI, "2028-02-29"),
        # any aware instant, whatever its own offset
        (
            datetime(2026, 12, 1, 0, 0, 0, tzinfo=timezone(timedelta(hours=8))),
            SHANGHAI,
            "2026-12-01",
        ),
        (
            datetime(2026, 11, 30, 11, 0, 0, tzinfo=timezone(timedelta(hours=-5))),
            SHANGHAI,
            "2026-12-01",
        ),
        (
            datetime(2026, 11, 30, 10, 59, 59, tzinfo=timezone(timedelta(hours=-5))),
            SHANGHAI,
            "2026-11-30",
        ),
        # another billing timezone
        (datetime(2026, 11, 30, 23, 0, 0, tzinfo=UTC), ZoneInfo("America/New_York"), "2026-11-30"),
        (datetime(2026, 12, 1, 5, 0, 0, tzinfo=UTC), ZoneInfo("America/New_York"), "2026-12-01"),
    ],
)
def test_local_date(instant: datetime, tz: ZoneInfo, expected: str) -> None:
    assert local_date(instant, tz) == d(expected)


def test_local_date_refuses_naive_instants() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        local_date(datetime(2026, 11, 30, 16, 0, 0), SHANGHAI)


@pytest.mark.parametrize(
    ("day", "tz", "expected_utc"),
    [
        ("2026-11-30", SHANGHAI, datetime(2026, 11, 30, 16, 0, 0, tzinfo=UTC)),
        ("2026-12-31", SHANGHAI, datetime(2026, 12, 31, 16, 0, 0, tzinfo=UTC)),
        ("2028-02-28", SHANGHAI, datetime(2028, 2, 28, 16, 0, 0, tzinfo=UTC)),
        ("2028-02-29", SHANGHAI, datetime(2028, 2, 29, 16, 0, 0, tzinfo=UTC)),
        ("2026-02-14", ZoneInfo("UTC"), datetime(2026, 2, 15, 0, 0, 0, tzinfo=UTC)),
        # New York: EST (UTC-5) in winter, EDT (UTC-4) in summer
        ("2026-01-10", ZoneInfo("America/New_York"), datetime(2026, 1, 11, 5, 0, 0, tzinfo=UTC)),
        ("2026-07-10", ZoneInfo("America/New_York"), datetime(2026, 7, 11, 4, 0, 0, tzinfo=UTC)),
    ],
)
def test_day_end(day: str, tz: ZoneInfo, expected_utc: datetime) -> None:
    end = day_end(d(day), tz)
    assert end == expected_utc
    assert end.tzinfo is not None
    # the last second of the day is still that day; the end instant is the next day
    assert local_date(end - timedelta(seconds=1), tz) == d(day)
    assert local_date(end, tz) == d(day) + timedelta(days=1)
