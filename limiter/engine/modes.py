"""The engines: :class:`AsyncLimiter` (asyncio) and :class:`Limiter` (blocking). Each is its
operations (one line each, from :mod:`limiter.ops`) and one driver loop over its store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from concurrent.futures import Future
from typing import Any, TypeVar

from limiter.engine.base import BaseEngine
from limiter.engine.driver import Step
from limiter.engine.surface import asynchronous, blocking
from limiter.errors import StoreUnavailable
from limiter.ops import (
    accounts,
    friends,
    groups,
    history,
    metering,
    migration,
    plan_changes,
    reports,
    reserving,
)
from limiter.ops.context import Op
from limiter.ops.plan_changes import DEFAULT_ACTOR
from limiter.reconcile import ReconcileReport, Record
from limiter.reconcile.rebuild import Chunker, Rebuild
from limiter.results import DataStatus
from limiter.store import (
    AsyncioStore,
    AsyncStore,
    BlockingStore,
    Pipeline,
    SyncStore,
    async_client,
    sync_client,
)

T = TypeVar("T")
# Records an asyncio reconcile reads between two turns of the event loop.
YIELD_EVERY = 1000


class AsyncLimiter(BaseEngine[AsyncioStore]):
    """The engine for asyncio code: one Redis round trip per decision (and, now and then, one
    more to check that the data set was not flushed: :mod:`limiter.marker`).

    Build it with :meth:`from_settings` (reads ``LIMITER_*``) or from your own
    ``redis.asyncio.Redis`` client (``decode_responses=True``) wrapped in an ``AsyncStore``
    (or any :class:`~limiter.store.AsyncioStore`).
    """

    @staticmethod
    def connect(url: str) -> AsyncioStore:
        return AsyncStore(async_client(url))

    async def run(self, op: Op[T], app: str | None = None) -> T:
        """Drive ``op`` to its result, checking ``app``'s marker first when due."""
        outage = None
        if app is not None and self.data.due(app):
            try:
                await self._drive(self.data.check(app))
            except StoreUnavailable as exc:
                outage = exc
            except Exception:
                self.data.check_failed(app)
        return await self._drive(op, outage)

    async def _drive(self, op: Op[T], outage: StoreUnavailable | None = None) -> T:
        step = Step(op, self.context.stats, self.data, outage)
        while not step.done:
            try:
                reply = await self.store.execute(step.request)
            except Exception as exc:
                step.failed(exc)
            else:
                step.replied(reply)
        return step.result

    async def check_data(self) -> DataStatus:
        """Check the data set's marker now (one round trip), reporting a flush as requests
        do; raises :class:`StoreUnavailable` when the store does not answer."""
        return await self._drive(self.data.check_data())

    async def apps_in_old_layout(self) -> list[str]:
        """The apps with relations still in limiter 0.1's layout, for :meth:`migrate` (a
        walk of the whole data set: maintenance only)."""
        layout = self.context.layout
        patterns = layout.legacy_patterns()
        return layout.apps_of([k for p in patterns for k in await self.store.scan(p, "zset")])

    async def aclose(self) -> None:
        await self.store.close()

    register_users = asynchronous(accounts.register_users)
    delete_users = asynchronous(accounts.delete_users)
    add_friends = asynchronous(friends.add_friends)
    remove_friends = asynchronous(friends.remove_friends)
    create_group = asynchronous(groups.create_group)
    add_members = asynchronous(groups.add_members)
    remove_members = asynchronous(groups.remove_members)
    destroy_group = asynchronous(groups.destroy_group)
    reserve = asynchronous(reserving.reserve)
    release = asynchronous(reserving.release)
    release_added = asynchronous(reserving.release_added)
    set_edition = asynchronous(plan_changes.set_edition)
    renew = asynchronous(plan_changes.renew)
    add_expansion = asynchronous(plan_changes.add_expansion)
    remove_expansion = asynchronous(plan_changes.remove_expansion)
    set_override = asynchronous(plan_changes.set_override)
    clear_override = asynchronous(plan_changes.clear_override)
    plan = asynchronous(reports.plan)
    limits = asynchronous(reports.limits)
    usage = asynchronous(reports.usage)
    user_usage = asynchronous(reports.user_usage)
    group_usage = asynchronous(reports.group_usage)
    audit = asynchronous(reports.audit)
    over_limit = asynchronous(reports.over_limit)
    record_login = asynchronous(metering.record_login)
    record_bandwidth = asynchronous(metering.record_bandwidth)
    monthly_usage = asynchronous(metering.monthly_usage)
    bill = asynchronous(metering.bill)
    history_cutoff = asynchronous(history.history_cutoff)
    migrate = asynchronous(migration.migrate)
    clamp_history = asynchronous(history.clamp_history)

    async def reconcile(
        self,
        app: str,
        records: Iterable[Record] | AsyncIterable[Record],
        *,
        actor: str = DEFAULT_ACTOR,
    ) -> ReconcileReport:
        """Rebuild the app's counters from its source of truth (see :mod:`limiter.reconcile`);
        ``records`` may be a plain or an async iterable, read in chunks. While Redis loads one
        chunk (:meth:`AsyncStore.submit`), the next is read, then validated and built in a
        worker thread, as in :meth:`Limiter.reconcile`: the event loop stays free to send the
        load in flight (and to run other tasks; it gets a turn every :data:`YIELD_EVERY`
        records read)."""
        rebuild, chunker = Rebuild(self.context, app), Chunker()
        sending: tuple[Pipeline[list[int]], asyncio.Task[list[Any]]] | None = None

        async def send(load: Pipeline[list[int]] | None) -> None:
            """Start sending ``load``, then wait for the one before it."""
            nonlocal sending
            previous, sending = sending, None
            if load is not None:
                sending = (load, self.store.submit(load))
            if previous is not None:
                with self._outage_counted():
                    rebuild.written(previous[0], await previous[1])

        try:
            async for n, record in _each(records):
                chunk = chunker.add(record)
                if chunk is not None:
                    await send(await asyncio.to_thread(rebuild.prepare, chunk))
                elif n % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            await send(await asyncio.to_thread(rebuild.prepare, chunker.rest()))
            await send(None)
            return await self.run(rebuild.finish(actor), app)
        except BaseException:
            if sending is not None:  # let it land before the rebuild keys are dropped
                with contextlib.suppress(Exception):
                    await sending[1]
            with contextlib.suppress(StoreUnavailable):
                await self.run(rebuild.abort())
            raise


class Limiter(BaseEngine[BlockingStore]):
    """The blocking engine: the same operations as :class:`AsyncLimiter`, for sync code."""

    @staticmethod
    def connect(url: str) -> BlockingStore:
        return SyncStore(sync_client(url))

    def run(self, op: Op[T], app: str | None = None) -> T:
        """Drive ``op`` to its result, checking ``app``'s marker first when due."""
        outage = None
        if app is not None and self.data.due(app):
            try:
                self._drive(self.data.check(app))
            except StoreUnavailable as exc:
                outage = exc
            except Exception:
                self.data.check_failed(app)
        return self._drive(op, outage)

    def _drive(self, op: Op[T], outage: StoreUnavailable | None = None) -> T:
        step = Step(op, self.context.stats, self.data, outage)
        while not step.done:
            try:
                reply = self.store.execute(step.request)
            except Exception as exc:
                step.failed(exc)
            else:
                step.replied(reply)
        return step.result

    def check_data(self) -> DataStatus:
        """Check the data set's marker now (one round trip), reporting a flush as requests
        do; raises :class:`StoreUnavailable` when the store does not answer."""
        return self._drive(self.data.check_data())

    def apps_in_old_layout(self) -> list[str]:
        """The apps with relations still in limiter 0.1's layout, for :meth:`migrate` (a
        walk of the whole data set: maintenance only)."""
        layout = self.context.layout
        return layout.apps_of([k for p in layout.legacy_patterns() for k in self._scan(p)])

    def _scan(self, pattern: str) -> list[str]:
        with self._outage_counted():
            return self.store.scan(pattern, "zset")

    def close(self) -> None:
        self.store.close()

    register_users = blocking(accounts.register_users)
    delete_users = blocking(accounts.delete_users)
    add_friends = blocking(friends.add_friends)
    remove_friends = blocking(friends.remove_friends)
    create_group = blocking(groups.create_group)
    add_members = blocking(groups.add_members)
    remove_members = blocking(groups.remove_members)
    destroy_group = blocking(groups.destroy_group)
    reserve = blocking(reserving.reserve)
    release = blocking(reserving.release)
    release_added = blocking(reserving.release_added)
    set_edition = blocking(plan_changes.set_edition)
    renew = blocking(plan_changes.renew)
    add_expansion = blocking(plan_changes.add_expansion)
    remove_expansion = blocking(plan_changes.remove_expansion)
    set_override = blocking(plan_changes.set_override)
    clear_override = blocking(plan_changes.clear_override)
    plan = blocking(reports.plan)
    limits = blocking(reports.limits)
    usage = blocking(reports.usage)
    user_usage = blocking(reports.user_usage)
    group_usage = blocking(reports.group_usage)
    audit = blocking(reports.audit)
    over_limit = blocking(reports.over_limit)
    record_login = blocking(metering.record_login)
    record_bandwidth = blocking(metering.record_bandwidth)
    monthly_usage = blocking(metering.monthly_usage)
    bill = blocking(metering.bill)
    history_cutoff = blocking(history.history_cutoff)
    migrate = blocking(migration.migrate)
    clamp_history = blocking(history.clamp_history)

    def reconcile(
        self, app: str, records: Iterable[Record], *, actor: str = DEFAULT_ACTOR
    ) -> ReconcileReport:
        """Rebuild the app's counters from its source of truth (see :mod:`limiter.reconcile`);
        ``records`` is read in chunks. While Redis loads one chunk, the next is validated and
        built (:meth:`SyncStore.submit`): Python's work and Redis's overlap."""
        rebuild, chunker = Rebuild(self.context, app), Chunker()
        sending: tuple[Pipeline[list[int]], Future[list[Any]]] | None = None

        def send(load: Pipeline[list[int]] | None) -> None:
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
            return self.run(rebuild.finish(actor), app)
        except BaseException:
            if sending is not None:  # let it land before the rebuild keys are dropped
                with contextlib.suppress(Exception):
                    sending[1].result()
            with contextlib.suppress(StoreUnavailable):
                self.run(rebuild.abort())
            raise

    def _submit(self, load: Pipeline[list[int]]) -> Future[list[Any]]:
        with self._outage_counted():
            return self.store.submit(load)

    def _collect(self, sent: Future[list[Any]]) -> list[Any]:
        """The replies of a submitted pipeline."""
        with self._outage_counted():
            return sent.result()


async def _each(
    records: Iterable[Record] | AsyncIterable[Record],
) -> AsyncIterator[tuple[int, Record]]:
    """The records, numbered from 1."""
    if isinstance(records, AsyncIterable):
        n = 0
        async for record in records:
            n += 1
            yield n, record
    else:
        for n, record in enumerate(records, 1):
            yield n, record
