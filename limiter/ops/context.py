"""What every operation reads: settings, catalog, clock, key layout, id checks, statistics and
the per-process caches of plans, resolved limits and billing days."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from limiter.catalog import LIMIT_NAMES, Catalog
from limiter.clock import Clock
from limiter.errors import ConfigurationError, InvalidRequest
from limiter.ids import IdRules
from limiter.limits import EffectiveLimits, Limit, resolve, unchanged_until
from limiter.metering import Month
from limiter.periods import day_end, local_date
from limiter.plan import PlanState, decode
from limiter.settings import Settings
from limiter.stats import Stats
from limiter.store import reads, scripts
from limiter.store.keys import AppKeys, KeyLayout
from limiter.store.requests import Request, call

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
# An operation: yields the round trips it needs, is sent each reply, returns its result.
Op = Generator[Request, Any, T]

PLAN_CACHE_APPS = 10_000
BILLING_DAYS_KEPT = 8
# How far ahead of the clock an event's own time may be (clients' clocks drift).
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Resolution:
    """An app's limits resolved from one copy of its plan at ``since``; they hold until
    ``until`` (see :func:`unchanged_until`), so decisions in between reuse them."""

    plan: PlanState
    since: datetime
    until: datetime
    limits: EffectiveLimits
    # add_members' argument describing the group types, built once per resolution
    member_types: str


@dataclass(frozen=True)
class BillingDay:
    """One billing day as metering writes it: its text, its month's, when it stops taking
    logins (its end plus ``late_seconds``) and when its month's metering may go."""

    day: date
    text: str
    month: str
    closes: datetime
    kept_until: datetime


def seconds_left(until: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` to ``until``, at least 1 (a TTL)."""
    return max(1, int((until - now).total_seconds()))


def cap(limit: Limit) -> int:
    """A limit as the scripts take it: -1 for unlimited."""
    return -1 if limit.value is None else limit.value


def _remember(cache: dict[K, V], key: K, value: V) -> None:
    """Store ``value`` in a per-app cache, dropping its oldest entry when it is full (app ids
    come from clients: the caches stay bounded)."""
    if key not in cache and len(cache) >= PLAN_CACHE_APPS:
        cache.pop(next(iter(cache)))
    cache[key] = value


def _member_types(catalog: Catalog, limits: EffectiveLimits) -> str:
    """add_members' argument describing the group types (:func:`scripts.group_types`)."""
    return scripts.group_types(
        [
            (name, cap(found), catalog.group_types[name].counts_toward_groups_per_user)
            for name, found in limits.group_members.items()
        ]
    )


class Context:
    """One engine's configuration and caches; every operation takes it first."""

    def __init__(self, settings: Settings, catalog: Catalog, clock: Clock) -> None:
        if settings.default_edition not in catalog.editions:
            raise ConfigurationError(
                f"default_edition: {settings.default_edition!r} is not an edition of the catalog"
            )
        self.settings = settings
        self.catalog = catalog
        self.clock = clock
        self.layout = KeyLayout(settings.key_prefix)
        self.ids = IdRules(
            settings.user_id_max_bytes, settings.group_id_max_bytes, settings.max_batch
        )
        self.tz = ZoneInfo(settings.timezone)
        self.stats = Stats()
        # app -> (when this process's copy goes stale, the copy)
        self._plans: dict[str, tuple[datetime, PlanState]] = {}
        # app -> its limits, resolved from the copy above (decisions reuse them)
        self._resolutions: dict[str, Resolution] = {}
        self._app_keys: dict[str, AppKeys] = {}
        self._days: dict[date, BillingDay] = {}
        self._shadow = {limit: settings.mode(limit) == "shadow" for limit in LIMIT_NAMES}

    def keys(self, app: str) -> AppKeys:
        """The app's keys (its id validated), built once per app: every operation needs them."""
        keys = self._app_keys.get(app)
        if keys is None:
            keys = self.layout.app(app)
            _remember(self._app_keys, app, keys)
        return keys

    def in_shadow(self, limit: str) -> bool:
        """Whether ``limit`` is in shadow mode (refusals logged and counted, not enforced)."""
        return self._shadow[limit]

    def today(self) -> date:
        return local_date(self.clock.now(), self.tz)

    # -- the plan and its limits ------------------------------------------------------------

    def plan(self, app: str, *, fresh: bool = False) -> Op[PlanState]:
        """The app's plan state, from this process's copy when it is recent enough."""
        now = self.clock.now()
        cached = None if fresh else self._cached_plan(app, now)
        if cached is not None:
            return cached
        until = now + timedelta(seconds=self.settings.cache_seconds)
        stale = self._plans.get(app)
        if stale is not None:  # requests arriving while this read is in flight keep the old copy
            _remember(self._plans, app, (until, stale[1]))
        fields = yield from call(reads.plan_fields(self.keys(app)))
        plan = decode(fields, self.settings.default_edition)
        _remember(self._plans, app, (until, plan))
        return plan

    def forget_plan(self, app: str) -> None:
        """Drop this process's copy of the app's plan (it was just changed)."""
        self._plans.pop(app, None)

    def _cached_plan(self, app: str, now: datetime) -> PlanState | None:
        cached = self._plans.get(app)
        return cached[1] if cached is not None and now < cached[0] else None

    def limits(self, app: str) -> Op[EffectiveLimits]:
        return (yield from self.resolution(app)).limits

    def resolution(self, app: str) -> Op[Resolution]:
        """The app's limits now: resolved once per copy of its plan, reused until they could
        change (a day boundary, the end of grace, an override expiring)."""
        now = self.clock.now()
        plan = self._cached_plan(app, now)
        if plan is None:
            plan = yield from self.plan(app, fresh=True)
            now = self.clock.now()
        known = self._resolutions.get(app)
        if known is not None and known.plan is plan and known.since <= now < known.until:
            return known
        limits = resolve(self.catalog, plan, now, self.tz)
        until = unchanged_until(self.catalog, plan, now, self.tz)
        known = Resolution(plan, now, until, limits, _member_types(self.catalog, limits))
        _remember(self._resolutions, app, known)
        return known

    # -- time and metering ------------------------------------------------------------------

    def instant(self, at: datetime | None, field: str) -> datetime:
        """An event's time as given (default now): aware, and not in the future."""
        now = self.clock.now()
        if at is None:
            return now
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise InvalidRequest(field, "must be a timezone-aware instant")
        if at > now + FUTURE_TOLERANCE:
            raise InvalidRequest(field, f"{at.isoformat()} is in the future")
        return at

    def metering(self, keys: AppKeys) -> scripts.Metering:
        """Where a script that changes the live group count keeps the month's peak: this
        month's metering hash, today, the month's first day and the hash's retention."""
        today = self.today()
        month = Month.parse(today)
        meter = keys.meter(str(month))
        return scripts.Metering(
            meter, today.isoformat(), month.first_day.isoformat(), self.retention(month)
        )

    def retention(self, month: Month) -> int:
        """Seconds from now until a month's metering hash may go: the retention after its end."""
        return seconds_left(self._kept_until(month), self.clock.now())

    def _kept_until(self, month: Month) -> datetime:
        return month.ends_at(self.tz) + timedelta(days=self.settings.metering_retention_days)

    def billing_day(self, day: date) -> BillingDay:
        """What metering needs about ``day``, worked out on its first login (a handful of days
        are live at once; the cache is emptied when it grows past that)."""
        found = self._days.get(day)
        if found is None:
            month = Month.parse(day)
            closes = day_end(day, self.tz) + timedelta(seconds=self.settings.late_seconds)
            found = BillingDay(day, day.isoformat(), str(month), closes, self._kept_until(month))
            if len(self._days) >= BILLING_DAYS_KEPT:
                self._days.clear()
            self._days[day] = found
        return found
