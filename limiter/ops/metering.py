"""Metering and the bill: logins counted once per user and billing day (DAU), bandwidth peaks,
what a month measured, and the month's bill from the catalog's prices and the ledger."""

from __future__ import annotations

import logging
import math
from datetime import date, datetime
from decimal import Decimal

from limiter.billing import Bill, BillingHistory, compute_bill
from limiter.errors import InvalidRequest
from limiter.metering import LoginRecorded, Month, MonthlyUsage
from limiter.ops.context import BillingDay, Context, Op, seconds_left
from limiter.ops.decisions import guarded
from limiter.periods import local_date
from limiter.plan import decode_ledger
from limiter.store import reads, scripts
from limiter.store.keys import AppKeys
from limiter.store.requests import call

log = logging.getLogger("limiter")


def record_login(
    ctx: Context, app: str, user: str, at: datetime | None = None
) -> Op[LoginRecorded]:
    """Count ``user`` as active on the billing day of ``at`` (default now), once per day.

    A login for a day that closed more than ``late_seconds`` ago is not counted.
    """
    keys = ctx.keys(app)
    user = ctx.ids.user(user)
    billing = ctx.billing_day(local_date(ctx.instant(at, "at"), ctx.tz))
    degraded = LoginRecorded(app, user, billing.day, False, 0, degraded=True)
    decided = _record_login(ctx, app, keys, user, billing)
    return guarded(ctx, decided, lambda: degraded, "record_login")


def _record_login(
    ctx: Context, app: str, keys: AppKeys, user: str, billing: BillingDay
) -> Op[LoginRecorded]:
    now = ctx.clock.now()
    script = scripts.record_login(
        keys,
        user,
        billing.text,
        keys.dau(billing.day),
        keys.meter(billing.month),
        math.ceil((billing.closes - now).total_seconds()),
        seconds_left(billing.kept_until, now),
        require_registered=ctx.settings.require_registered,
    )
    outcome, count = yield from call(script)
    if outcome == -2:
        return LoginRecorded(app, user, billing.day, False, count, registered=False)
    if outcome < 0:
        log.warning(
            "login of %r on %s arrived after the day closed: not counted", user, billing.day
        )
    return LoginRecorded(app, user, billing.day, outcome == 1, count, late=outcome < 0)


def record_bandwidth(
    ctx: Context, app: str, mbps: Decimal | int | float | str, at: datetime | None = None
) -> Op[Decimal]:
    """Record an AV bandwidth measurement; returns the day's peak so far (Mbps). A day
    closed more than ``late_seconds`` ago is final: :class:`InvalidRequest`."""
    keys = ctx.keys(app)
    try:
        value = Decimal(str(mbps))
    except ArithmeticError:
        raise InvalidRequest("mbps", f"must be a number, not {mbps!r}") from None
    if isinstance(mbps, bool) or not value.is_finite() or value < 0:
        raise InvalidRequest("mbps", f"must be a finite number >= 0, not {mbps!r}")
    day = local_date(ctx.instant(at, "at"), ctx.tz)
    closes = ctx.billing_day(day).closes
    if math.ceil((closes - ctx.clock.now()).total_seconds()) <= 0:
        raise InvalidRequest("at", f"{day} is closed: its bandwidth peak is final")
    decided = _record_bandwidth(ctx, keys, day, value)
    return guarded(ctx, decided, lambda: value, "record_bandwidth")


def _record_bandwidth(ctx: Context, keys: AppKeys, day: date, value: Decimal) -> Op[Decimal]:
    month = Month.parse(day)
    script = scripts.record_bandwidth(
        keys.meter(str(month)), day.isoformat(), str(value), ctx.retention(month)
    )
    return Decimal((yield from call(script)))


def monthly_usage(ctx: Context, app: str, month: Month | str) -> Op[MonthlyUsage]:
    """What the bill of ``month`` measures, as recorded so far."""
    keys = ctx.keys(app)
    return _monthly_usage(ctx, app, keys, Month.parse(month))


def _monthly_usage(ctx: Context, app: str, keys: AppKeys, month: Month) -> Op[MonthlyUsage]:
    current = Month.of(ctx.clock.now(), ctx.tz)
    # Later months can hold the answer for as long as their metering is kept.
    look_ahead = math.ceil(ctx.settings.metering_retention_days / 28) + 1
    later = [month.shift(n) for n in range(1, look_ahead + 1)]
    later = [m for m in later if m <= current]
    read = reads.month_metering(keys, str(month), [str(m) for m in later])
    fields, starts, live = yield from call(read)
    dau: dict[date, int] = {}
    bandwidth: dict[date, Decimal] = {}
    for name, raw in fields.items():
        kind, _, day = name.partition(":")
        if kind == "dau":
            dau[date.fromisoformat(day)] = int(raw)
        elif kind == "bandwidth":
            bandwidth[date.fromisoformat(day)] = Decimal(raw)
    peak_groups_day = _day(fields.get("peak_groups_day"))
    if "peak_groups" in fields:
        peak_groups = int(fields["peak_groups"])
    elif month > current:
        peak_groups = 0
    else:
        # No group was created or destroyed that month: the count held all month, at what
        # the next month with a change started from (or, with none since, now).
        peak_groups = next((int(s) for s in starts if s is not None), live)
        peak_groups_day = month.first_day if peak_groups else None
    return MonthlyUsage(
        app,
        month,
        dict(sorted(dau.items())),
        int(fields.get("peak_dau", 0)),
        _day(fields.get("peak_dau_day")),
        peak_groups,
        peak_groups_day,
        dict(sorted(bandwidth.items())),
    )


def bill(ctx: Context, app: str, month: Month | str) -> Op[Bill]:
    """The bill of ``month`` from the catalog's prices: what was bought that month and
    what the month measured (see :func:`limiter.billing.compute_bill`)."""
    keys = ctx.keys(app)
    return _bill(ctx, app, keys, Month.parse(month))


def _bill(ctx: Context, app: str, keys: AppKeys, month: Month) -> Op[Bill]:
    usage = yield from _monthly_usage(ctx, app, keys, month)
    plan = yield from ctx.plan(app, fresh=True)
    entries = yield from call(reads.ledger(keys))
    history = BillingHistory.replay(decode_ledger(entries), plan)
    return compute_bill(ctx.catalog, history, usage)


def _day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)
