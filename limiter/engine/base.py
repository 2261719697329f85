"""What both engines share: settings, catalog, clock, statistics, the data-set watch and the
pure helpers integrations need (today's billing date, limits of a plan, id checks), with no I/O."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Generic, Self, TypeVar
from zoneinfo import ZoneInfo

from limiter.catalog import Catalog, load_catalog
from limiter.clock import Clock, SystemClock
from limiter.errors import StoreUnavailable
from limiter.limits import EffectiveLimits, resolve
from limiter.marker import DataWatch
from limiter.metering import Month
from limiter.ops.context import Context
from limiter.periods import local_date
from limiter.plan import PlanState
from limiter.results import DataStatus
from limiter.settings import Settings, load_settings
from limiter.stats import Stats

S = TypeVar("S")


class BaseEngine(Generic[S]):
    """Configuration and everything an engine answers without a round trip; ``store`` runs
    its round trips (any store of the engine's mode, see :mod:`limiter.store.protocol`)."""

    def __init__(
        self,
        store: S,
        *,
        settings: Settings | None = None,
        catalog: Catalog | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        settings = load_settings(settings)
        if catalog is None:
            catalog = load_catalog(settings.catalog_path)
        self.context = Context(settings, catalog, clock if clock is not None else SystemClock())
        self.data = DataWatch(
            self.context.layout, self.context.clock, settings.marker_check_seconds
        )

    @staticmethod
    def connect(url: str) -> S:
        """The store of this engine's mode for ``LIMITER_REDIS_URL``."""
        raise NotImplementedError

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, clock: Clock | None = None) -> Self:
        """An engine on the store ``settings.redis_url`` names (default: ``LIMITER_*``)."""
        settings = load_settings(settings)
        return cls(cls.connect(settings.redis_url), settings=settings, clock=clock)

    @property
    def settings(self) -> Settings:
        return self.context.settings

    @property
    def catalog(self) -> Catalog:
        return self.context.catalog

    @property
    def clock(self) -> Clock:
        return self.context.clock

    @property
    def timezone(self) -> ZoneInfo:
        """The billing timezone: calendar dates, periods and DAU days are dates there."""
        return self.context.tz

    @property
    def stats(self) -> Stats:
        """What this engine did since it was built (decisions, outages, latency, changes)."""
        return self.context.stats

    @property
    def decisions(self) -> Counter[tuple[str, str]]:
        """Decisions so far in this process, by (limit, allowed | refused | shadow_refused)."""
        return self.context.stats.decisions

    def now(self) -> datetime:
        """The current instant by the engine's clock (a test's ``ManualClock`` moves it)."""
        return self.context.clock.now()

    def today(self) -> date:
        """Today's date in the billing timezone."""
        return local_date(self.now(), self.context.tz)

    def month(self) -> Month:
        """The current billing month."""
        return Month.of(self.now(), self.context.tz)

    def limits_of(self, plan: PlanState, at: datetime | None = None) -> EffectiveLimits:
        """The limits ``plan`` gives at ``at`` (default now), without a round trip."""
        return resolve(self.catalog, plan, self.now() if at is None else at, self.context.tz)

    def check_user(self, value: object, field: str = "user") -> str:
        """A valid user id, as every operation takes it; else :class:`InvalidRequest`."""
        return self.context.ids.user(value, field)

    def check_group(self, value: object, field: str = "group") -> str:
        """A valid group id, as every operation takes it; else :class:`InvalidRequest`."""
        return self.context.ids.group(value, field)

    def check_users(self, values: Iterable[str] | str, field: str) -> tuple[str, ...]:
        """Valid user ids in request order, duplicates once, at most ``max_batch``."""
        return self.context.ids.users(values, field)

    def data_status(self) -> DataStatus:
        """What this engine knows of its Redis data set (no round trip): the marker it saw,
        since when, and the flushes it detected (see :mod:`limiter.marker`)."""
        return self.data.status

    @contextlib.contextmanager
    def _outage_counted(self) -> Iterator[None]:
        """An outage of a submitted pipeline (a reconcile's loads) is counted as a round
        trip's is."""
        try:
            yield
        except StoreUnavailable:
            self.context.stats.store_errors["pipeline"] += 1
            self.data.outage()
            raise
