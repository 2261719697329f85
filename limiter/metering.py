"""What the bill depends on: months, daily active users, peaks and bandwidth. Pure types.

The store keeps one metering hash per app and ``YYYY-MM`` month (see :mod:`limiter.store.keys`);
:class:`MonthlyUsage` is that hash read back, :func:`limiter.billing.compute_bill` prices it.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from limiter.errors import InvalidRequest
from limiter.periods import day_end

_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month in the billing timezone."""

    year: int
    month: int

    @classmethod
    def parse(cls, value: object, field: str = "month") -> Month:
        """``"YYYY-MM"`` (or a :class:`Month`, or a date: its month)."""
        if isinstance(value, Month):
            return value
        if isinstance(value, datetime):  # its month depends on the billing timezone: Month.of
            raise InvalidRequest(field, f"give a date or YYYY-MM, not the instant {value}")
        if isinstance(value, date):
            return cls(value.year, value.month)
        match = _MONTH.fullmatch(value) if isinstance(value, str) else None
        if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1:
            raise InvalidRequest(field, f"must be a month as YYYY-MM, not {value!r}")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, instant: datetime, tz: ZoneInfo) -> Month:
        """The month an instant falls in, in the billing timezone."""
        local = instant.astimezone(tz)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        """The month's first day."""
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        """The month's last day."""
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def days(self) -> tuple[date, ...]:
        """Every day of the month, in order."""
        return tuple(self.first_day + timedelta(days=n) for n in range(self.last_day.day))

    def contains(self, day: date) -> bool:
        """Whether ``day`` falls in this month."""
        return (day.year, day.month) == (self.year, self.month)

    def shift(self, months: int) -> Month:
        """The month ``months`` later (earlier when negative)."""
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def ends_at(self, tz: ZoneInfo) -> datetime:
        """The instant the month ends: midnight after its last day, in the billing timezone."""
        return day_end(self.last_day, tz)


@dataclass(frozen=True)
class LoginRecorded:
    """``record_login``: whether this login was the user's first of that billing day, and the
    day's count after it. ``late``: the day had already closed, so nothing was counted;
    ``registered`` False: accounts first, and the user is not a registered account, so
    nothing was counted."""

    app: str
    user: str
    day: date
    counted: bool
    dau: int
    late: bool = False
    degraded: bool = False
    registered: bool = True


@dataclass(frozen=True)
class MonthlyUsage:
    """One app's metering for one month, as recorded so far.

    ``dau``: each day with logins -> distinct users that day. ``peak_groups``: the most live
    groups (all types) at any moment of the month, and the day it was reached. ``bandwidth``:
    each day's peak AV bandwidth in Mbps.
    """

    app: str
    month: Month
    dau: Mapping[date, int] = field(default_factory=dict)
    peak_dau: int = 0
    peak_dau_day: date | None = None
    peak_groups: int = 0
    peak_groups_day: date | None = None
    bandwidth: Mapping[date, Decimal] = field(default_factory=dict)
