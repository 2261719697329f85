"""Billing periods: the T..T-1 rule, consecutive months, and dates in the billing timezone. Pure."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Period:
    """A paid span of whole days, both ends included, in the billing timezone."""

    starts_on: date
    ends_on: date

    def contains(self, day: date) -> bool:
        return self.starts_on <= day <= self.ends_on


def one_month_end(starts_on: date) -> date:
    """Last day of a one-month period bought on ``starts_on`` (day T to day T-1 next month).

    Where the next month has no day T, the period runs to that month's last day:
    2026-01-15 -> 2026-02-14, 2026-01-31 -> 2026-02-28, 2026-03-01 -> 2026-03-31.
    """
    year, month = (
        (starts_on.year + 1, 1)
        if starts_on.month == 12
        else (
            starts_on.year,
            starts_on.month + 1,
        )
    )
    last_day = calendar.monthrange(year, month)[1]
    if starts_on.day > last_day:
        return date(year, month, last_day)
    return date(year, month, starts_on.day) - timedelta(days=1)


def consecutive_periods(starts_on: date, months: int) -> tuple[Period, ...]:
    """``months`` one-month periods, each starting the day after the previous one ends."""
    if months < 1:
        raise ValueError("months must be at least 1")
    periods = []
    start = starts_on
    for _ in range(months):
        end = one_month_end(start)
        periods.append(Period(start, end))
        start = end + timedelta(days=1)
    return tuple(periods)


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    """The calendar date of an instant in the billing timezone."""
    return _aware(instant).astimezone(tz).date()


def day_end(day: date, tz: ZoneInfo) -> datetime:
    """The instant a billing day ends: midnight at its end, in the billing timezone."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return instant


def contiguous_span(periods: tuple[Period, ...], today: date) -> Period | None:
    """The contiguous paid span containing ``today``; when lapsed, the last span before it.

    None when there is no period at all or every period is still in the future.
    """
    spans: list[Period] = []
    for period in sorted(periods, key=lambda p: p.starts_on):
        if spans and period.starts_on <= spans[-1].ends_on + timedelta(days=1):
            last = spans[-1]
            spans[-1] = Period(last.starts_on, max(last.ends_on, period.ends_on))
        else:
            spans.append(period)
    current = None
    for span in spans:
        if span.starts_on <= today:
            current = span
    return current
