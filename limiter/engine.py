"""The engines: :class:`AsyncLimiter` (primary) and :class:`Limiter`, its blocking facade.

Both only drive the operations of :mod:`limiter.core` against a store; every rule lives there.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from concurrent.futures import Future
from datetime import date, datetime
from decimal import Decimal
from time import perf_counter
from typing import Any, TypeVar

from limiter.billing import Bill
from limiter.catalog import Catalog, load_catalog
from limiter.clock import Clock, SystemClock
from limiter.core import DEFAULT_ACTOR, Core, Op, Reservation
from limiter.errors import StoreUnavailable
from limiter.limits import EffectiveLimits
from limiter.marker import DataStatus, DataWatch
from limiter.metering import LoginRecorded, Month, MonthlyUsage
from limiter.plan import ExpansionGrant, Override, PlanState
from limiter.rebuild import Chunker, ReconcileReport, Record
from limiter.results import (
    AuditEntry,
    BatchResult,
    DeleteResult,
    GroupCreated,
    GroupDestroyed,
    GroupUsage,
    MembersResult,
    OverLimit,
    Usage,
    UserUsage,
)
from limiter.settings import Settings, load_settings
from limiter.store import AsyncStore, Pipeline, SyncStore, async_client, sync_client

T = TypeVar("T")


def _core(settings: Settings | None, catalog: Catalog | None, clock: Clock | None) -> Core:
    settings = load_settings(settings)
    if catalog is None:
        catalog = load_catalog(settings.catalog_path)
    return Core(settings, catalog, clock if clock is not None else SystemClock())


def _data_watch(core: Core) -> DataWatch:
    return DataWatch(core.keys.marker(), core.clock, core.settings.marker_check_seconds)


class AsyncLimiter:
    """The engine for asyncio code: one Redis round trip per decision (and, now and then, one
    more to check that the data set was not flushed: :mod:`limiter.marker`).

    Build it with :meth:`from_settings` (reads ``LIMITER_*``) or from your own
    ``redis.asyncio.Redis`` client (``decode_responses=True``) wrapped in an ``AsyncStore``.
    """

    def __init__(
        self,
        store: AsyncStore,
        *,
        settings: Settings | None = None,
        catalog: Catalog | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.core = _core(settings, catalog, clock)
        self.data = _data_watch(self.core)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, clock: Clock | None = None
    ) -> AsyncLimiter:
        core = _core(settings, None, clock)
        store = AsyncStore(async_client(core.settings.redis_url))
        return cls(store, settings=core.settings, catalog=core.catalog, clock=core.clock)

    @property
    def settings(self) -> Settings:
        return self.core.settings

    @property
    def catalog(self) -> Catalog:
        return self.core.catalog

    def now(self) -> datetime:
        """The current instant by the engine's clock (a test's ``ManualClock`` moves it)."""
        return self.core.clock.now()

    @property
    def decisions(self) -> Counter[tuple[str, str]]:
        """Decisions so far in this process, by (limit, allowed | refused | shadow_refused)."""
        return self.core.stats.decisions

    async def _run(self, op: Op[T]) -> T:
        return await self._drive(self.data.watch(op))

    async def _drive(self, op: Op[T]) -> T:
        try:
            request = next(op)
            while True:
                started = perf_counter()
                try:
                    reply = await self.store.execute(request)
                except StoreUnavailable as exc:
                    self.core.stats.store_errors[request.name] += 1
                    self.data.outage()
                    request = op.throw(exc)
                except Exception as exc:  # the op decides (a marker check lets its op go on)
                    request = op.throw(exc)
                else:
                    self.core.stats.observe(request.name, perf_counter() - started)
                    request = op.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result

    def data_status(self) -> DataStatus:
        """What this engine knows of its Redis data set (no round trip): the marker it saw,
        since when, and the flushes it detected (see :mod:`limiter.marker`)."""
        return self.data.status

    async def check_data(self) -> DataStatus:
        """Check the data set's marker now (one round trip), reporting a flush as requests
        do; raises :class:`StoreUnavailable` when the store does not answer."""
        return await self._drive(self.data.check())

    async def aclose(self) -> None:
        await self.store.close()

    # operations: see limiter.core.Core for what each one decides
    async def register_users(
        self, app: str, users: Iterable[str] | str, *, all_or_nothing: bool = False
    ) -> BatchResult:
        op = self.core.register_users(app, users, all_or_nothing=all_or_nothing)
        return await self._run(op)

    async def delete_users(self, app: str, users: Iterable[str] | str) -> DeleteResult:
        return await self._run(self.core.delete_users(app, users))

    async def add_friends(
        self,
        app: str,
        user: str,
        peers: Iterable[str] | str,
        both_ways: bool = True,
        *,
        all_or_nothing: bool = False,
    ) -> BatchResult:
        op = self.core.add_friends(app, user, peers, both_ways, all_or_nothing=all_or_nothing)
        return await self._run(op)

    async def remove_friends(
        self, app: str, user: str, peers: Iterable[str] | str, both_ways: bool = True
    ) -> BatchResult:
        return await self._run(self.core.remove_friends(app, user, peers, both_ways))

    async def create_group(
        self, app: str, group: str, type: str, owner: str, members: Iterable[str] = ()
    ) -> GroupCreated:
        return await self._run(self.core.create_group(app, group, type, owner, members))

    async def add_members(
        self, app: str, group: str, users: Iterable[str] | str, *, all_or_nothing: bool = False
    ) -> MembersResult:
        op = self.core.add_members(app, group, users, all_or_nothing=all_or_nothing)
        return await self._run(op)

    async def remove_members(self, app: str, group: str, users: Iterable[str] | str) -> BatchResult:
        return await self._run(self.core.remove_members(app, group, users))

    async def destroy_group(self, app: str, group: str) -> GroupDestroyed:
        return await self._run(self.core.destroy_group(app, group))

    async def reserve(self, app: str, action: str, values: Mapping[str, Any]) -> Reservation:
        return await self._run(self.core.reserve(app, action, values))

    async def release(self, reservation: Reservation) -> None:
        await self._run(self.core.release(reservation))

    async def set_edition(
        self,
        app: str,
        edition: str,
        purchased_on: date | None = None,
        months: int = 1,
        *,
        actor: str = DEFAULT_ACTOR,
    ) -> PlanState:
        op = self.core.set_edition(app, edition, purchased_on, months, actor=actor)
        return await self._run(op)

    async def renew(self, app: str, months: int = 1, *, actor: str = DEFAULT_ACTOR) -> PlanState:
        return await self._run(self.core.renew(app, months, actor=actor))

    async def add_expansion(
        self,
        app: str,
        kind: str,
        purchased_on: date,
        months: int = 1,
        days: int | None = None,
        *,
        actor: str = DEFAULT_ACTOR,
    ) -> ExpansionGrant:
        op = self.core.add_expansion(app, kind, purchased_on, months, days, actor=actor)
        return await self._run(op)

    async def remove_expansion(
        self, app: str, grant_id: str, *, actor: str = DEFAULT_ACTOR
    ) -> bool:
        return await self._run(self.core.remove_expansion(app, grant_id, actor=actor))

    async def set_override(
        self,
        app: str,
        limit: str,
        value: int | None,
        expires_at: datetime | None = None,
        *,
        user: str | None = None,
        group: str | None = None,
        actor: str = DEFAULT_ACTOR,
    ) -> Override:
        op = self.core.set_override(
            app, limit, value, expires_at, user=user, group=group, actor=actor
        )
        return await self._run(op)

    async def clear_override(
        self,
        app: str,
        limit: str,
        *,
        user: str | None = None,
        group: str | None = None,
        actor: str = DEFAULT_ACTOR,
    ) -> bool:
        op = self.core.clear_override(app, limit, user=user, group=group, actor=actor)
        return await self._run(op)

    async def plan(self, app: str) -> PlanState:
        return await self._run(self.core.plan(app))

    async def limits(self, app: str) -> EffectiveLimits:
        return await self._run(self.core.limits(app))

    async def usage(self, app: str) -> Usage:
        return await self._run(self.core.usage(app))

    async def user_usage(self, app: str, user: str) -> UserUsage:
        return await self._run(self.core.user_usage(app, user))

    async def group_usage(self, app: str, group: str) -> GroupUsage | None:
        return await self._run(self.core.group_usage(app, group))

    # metering and billing
    async def record_login(self, app: str, user: str, at: datetime | None = None) -> LoginRecorded:
        return await self._run(self.core.record_login(app, user, at))

    async def record_bandwidth(
        self, app: str, mbps: Decimal | int | float | str, at: datetime | None = None
    ) -> Decimal:
        return await self._run(self.core.record_bandwidth(app, mbps, at))

    async def monthly_usage(self, app: str, month: Month | str) -> MonthlyUsage:
        return await self._run(self.core.monthly_usage(app, month))

    async def bill(self, app: str, month: Month | str) -> Bill:
        return await self._run(self.core.bill(app, month))

    async def history_cutoff(self, app: str, now: datetime | None = None) -> datetime | None:
        return await self._run(self.core.history_cutoff(app, now))

    async def clamp_history(
        self, app: str, start: datetime, *, refuse: bool = False, field: str = "start"
    ) -> datetime:
        return await self._run(self.core.clamp_history(app, start, refuse=refuse, field=field))

    # operator reports
    async def audit(self, app: str, limit: int = 50) -> tuple[AuditEntry, ...]:
        return await self._run(self.core.audit(app, limit))

    async def over_limit(self, app: str) -> tuple[OverLimit, ...]:
        return await self._run(self.core.over_limit(app))

    async def reconcile(
        self,
        app: str,
        records: Iterable[Record] | AsyncIterable[Record],
        *,
        actor: str = DEFAULT_ACTOR,
    ) -> ReconcileReport:
        """Rebuild the app's counters from its source of truth (see :mod:`limiter.rebuild`);
        ``records`` may be a plain or an async iterable, read in chunks."""
        rebuild, chunker = self.core.rebuild(app), Chunker()
        try:
            async for record in _each(records):
                chunk = chunker.add(record)
                if chunk is not None:
                    await self._run(rebuild.load(chunk))
            await self._run(rebuild.load(chunker.rest()))
            return await self._run(rebuild.finish(actor))
        except BaseException:
            with contextlib.suppress(StoreUnavailable):
                await self._run(rebuild.abort())
            raise


class Limiter:
    """The blocking facade: the same operations as :class:`AsyncLimiter`, for sync code."""

    def __init__(
        self,
        store: SyncStore,
        *,
        settings: Settings | None = None,
        catalog: Catalog | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.core = _core(settings, catalog, clock)
        self.data = _data_watch(self.core)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, clock: Clock | None = None
    ) -> Limiter:
        core = _core(settings, None, clock)
        store = SyncStore(sync_client(core.settings.redis_url))
        return cls(store, settings=core.settings, catalog=core.catalog, clock=core.clock)

    @property
    def settings(self) -> Settings:
        return self.core.settings

    @property
    def catalog(self) -> Catalog:
        return self.core.catalog

    def now(self) -> datetime:
        """The current instant by the engine's clock (a test's ``ManualClock`` moves it)."""
        return self.core.clock.now()

    @property
    def decisions(self) -> Counter[tuple[str, str]]:
        """Decisions so far in this process, by (limit, allowed | refused | shadow_refused)."""
        return self.core.stats.decisions

    def _run(self, op: Op[T]) -> T:
        return self._drive(self.data.watch(op))

    def _drive(self, op: Op[T]) -> T:
        try:
            request = next(op)
            while True:
                started = perf_counter()
                try:
                    reply = self.store.execute(request)
                except StoreUnavailable as exc:
                    self.core.stats.store_errors[request.name] += 1
                    self.data.outage()
                    request = op.throw(exc)
                except Exception as exc:  # the op decides (a marker check lets its op go on)
                    request = op.throw(exc)
                else:
                    self.core.stats.observe(request.name, perf_counter() - started)
                    request = op.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result

    def data_status(self) -> DataStatus:
        """What this engine knows of its Redis data set (no round trip): the marker it saw,
        since when, and the flushes it detected (see :mod:`limiter.marker`)."""
        return self.data.status

    def check_data(self) -> DataStatus:
        """Check the data set's marker now (one round trip), reporting a flush as requests
        do; raises :class:`StoreUnavailable` when the store does not answer."""
        return self._drive(self.data.check())

    def close(self) -> None:
        self.store.close()

    # operations: see limiter.core.Core for what each one decides
    def register_users(
        self, app: str, users: Iterable[str] | str, *, all_or_nothing: bool = False
    ) -> BatchResult:
        return self._run(self.core.register_users(app, users, all_or_nothing=all_or_nothing))

    def delete_users(self, app: str, users: Iterable[str] | str) -> DeleteResult:
        return self._run(self.core.delete_users(app, users))

    def add_friends(
        self,
        app: str,
        user: str,
        peers: Iterable[str] | str,
        both_ways: bool = True,
        *,
        all_or_nothing: bool = False,
    ) -> BatchResult:
        op = self.core.add_friends(app, user, peers, both_ways, all_or_nothing=all_or_nothing)
        return self._run(op)

    def remove_friends(
        self, app: str, user: str, peers: Iterable[str] | str, both_ways: bool = True
    ) -> BatchResult:
        return self._run(self.core.remove_friends(app, user, peers, both_ways))

    def create_group(
        self, app: str, group: str, type: str, owner: str, members: Iterable[str] = ()
    ) -> GroupCreated:
        return self._run(self.core.create_group(app, group, type, owner, members))

    def add_members(
        self, app: str, group: str, users: Iterable[str] | str, *, all_or_nothing: bool = False
    ) -> MembersResult:
        return self._run(self.core.add_members(app, group, users, all_or_nothing=all_or_nothing))

    def remove_members(self, app: str, group: str, users: Iterable[str] | str) -> BatchResult:
        return self._run(self.core.remove_members(app, group, users))

    def destroy_group(self, app: str, group: str) -> GroupDestroyed:
        return self._run(self.core.destroy_group(app, group))

    def reserve(self, app: str, action: str, values: Mapping[str, Any]) -> Reservation:
        return self._run(self.core.reserve(app, action, values))

    def release(self, reservation: Reservation) -> None:
        self._run(self.core.release(reservation))

    def set_edition(
        self,
        app: str,
        edition: str,
        purchased_on: date | None = None,
        months: int = 1,
        *,
        actor: str = DEFAULT_ACTOR,
    ) -> PlanState:
        op = self.core.set_edition(app, edition, purchased_on, months, actor=actor)
        return self._run(op)

    def renew(self, app: str, months: int = 1, *, actor: str = DEFAULT_ACTOR) -> PlanState:
        return self._run(self.core.renew(app, months, actor=actor))

    def add_expansion(
        self,
        app: str,
        kind: str,
        purchased_on: date,
        months: int = 1,
        days: int | None = None,
        *,
        actor: str = DEFAULT_ACTOR,
    ) -> ExpansionGrant:
        op = self.core.add_expansion(app, kind, purchased_on, months, days, actor=actor)
        return self._run(op)

    def remove_expansion(self, app: str, grant_id: str, *, actor: str = DEFAULT_ACTOR) -> bool:
        return self._run(self.core.remove_expansion(app, grant_id, actor=actor))

    def set_override(
        self,
        app: str,
        limit: str,
        value: int | None,
        expires_at: datetime | None = None,
        *,
        user: str | None = None,
        group: str | None = None,
        actor: str = DEFAULT_ACTOR,
    ) -> Override:
        op = self.core.set_override(
            app, limit, value, expires_at, user=user, group=group, actor=actor
        )
        return self._run(op)

    def clear_override(
        self,
        app: str,
        limit: str,
        *,
        user: str | None = None,
        group: str | None = None,
        actor: str = DEFAULT_ACTOR,
    ) -> bool:
        op = self.core.clear_override(app, limit, user=user, group=group, actor=actor)
        return self._run(op)

    def plan(self, app: str) -> PlanState:
        return self._run(self.core.plan(app))

    def limits(self, app: str) -> EffectiveLimits:
        return self._run(self.core.limits(app))

    def usage(self, app: str) -> Usage:
        return self._run(self.core.usage(app))

    def user_usage(self, app: str, user: str) -> UserUsage:
        return self._run(self.core.user_usage(app, user))

    def group_usage(self, app: str, group: str) -> GroupUsage | None:
        return self._run(self.core.group_usage(app, group))

    # metering and billing
    def record_login(self, app: str, user: str, at: datetime | None = None) -> LoginRecorded:
        return self._run(self.core.record_login(app, user, at))

    def record_bandwidth(
        self, app: str, mbps: Decimal | int | float | str, at: datetime | None = None
    ) -> Decimal:
        return self._run(self.core.record_bandwidth(app, mbps, at))

    def monthly_usage(self, app: str, month: Month | str) -> MonthlyUsage:
        return self._run(self.core.monthly_usage(app, month))

    def bill(self, app: str, month: Month | str) -> Bill:
        return self._run(self.core.bill(app, month))

    def history_cutoff(self, app: str, now: datetime | None = None) -> datetime | None:
        return self._run(self.core.history_cutoff(app, now))

    def clamp_history(
        self, app: str, start: datetime, *, refuse: bool = False, field: str = "start"
    ) -> datetime:
        return self._run(self.core.clamp_history(app, start, refuse=refuse, field=field))

    # operator reports
    def audit(self, app: str, limit: int = 50) -> tuple[AuditEntry, ...]:
        return self._run(self.core.audit(app, limit))

    def over_limit(self, app: str) -> tuple[OverLimit, ...]:
        return self._run(self.core.over_limit(app))

    def reconcile(
        self, app: str, records: Iterable[Record], *, actor: str = DEFAULT_ACTOR
    ) -> ReconcileReport:
        """Rebuild the app's counters from its source of truth (see :mod:`limiter.rebuild`);
        ``records`` is read in chunks. While Redis loads one chunk, the next is validated and
        built (:meth:`SyncStore.submit`): Python's work and Redis's overlap."""
        rebuild, chunker = self.core.rebuild(app), Chunker()
        sending: tuple[Pipeline, Future[list[Any]]] | None = None

        def send(load: Pipeline | None) -> None:
            """Start sending ``load``, then wait for the one before it."""
            nonlocal sending
            previous, sending = sending, None
            if load is not None:
                sending = (load, self._submit(load))
            if previous is not None:
                rebuild.written(previous[0], self._collect(previous[1]))

        try:
            for record in records:
                chunk = chunker.add(record)
                if chunk is not None:
                    send(rebuild.prepare(chunk))
            send(rebuild.prepare(chunker.rest()))
            send(None)
            return self._run(rebuild.finish(actor))
        except BaseException:
            if sending is not None:  # let it land before the rebuild keys are dropped
                with contextlib.suppress(Exception):
                    sending[1].result()
            with contextlib.suppress(StoreUnavailable):
                self._run(rebuild.abort())
            raise

    def _submit(self, load: Pipeline) -> Future[list[Any]]:
        with self._outage_counted():
            return self.store.submit(load)

    def _collect(self, sent: Future[list[Any]]) -> list[Any]:
        """The replies of a submitted pipeline."""
        with self._outage_counted():
            return sent.result()

    @contextlib.contextmanager
    def _outage_counted(self) -> Iterator[None]:
        """An outage of a submitted pipeline is counted as a round trip's is."""
        try:
            yield
        except StoreUnavailable:
            self.core.stats.store_errors["pipeline"] += 1
            self.data.outage()
            raise


async def _each(records: Iterable[Record] | AsyncIterable[Record]) -> AsyncIterator[Record]:
    if isinstance(records, AsyncIterable):
        async for record in records:
            yield record
    else:
        for record in records:
            yield record
