"""Shared fixtures: one store fixture over fakeredis and the real server, engines over it.

The real server is ``LIMITER_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``). When it
does not answer, its tests are skipped locally and fail when ``CI`` is set.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio as aioredis

from limiter import AsyncLimiter, AsyncStore, Catalog, Limiter, Settings, SyncStore
from limiter.store.keys import AppKeys, KeyLayout
from limiter.testing import ManualClock

pytest_plugins = ["tests.figures"]

REDIS_URL = os.environ.get("LIMITER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BEIJING = timezone(timedelta(hours=8))
APP = "1400000001"


def real_redis_or_skip() -> redis.Redis:
    """A client of the real test server, flushed; skip (locally) or fail (CI) without one."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a Redis server at {REDIS_URL}: {exc}")
        pytest.skip(f"no Redis server at {REDIS_URL}")
    client.flushdb()
    return client


@dataclass
class Backend:
    """Makes clients of one data set: a fakeredis server, or the real test database."""

    name: str
    sync_client: Callable[[], redis.Redis]
    async_client: Callable[[], aioredis.Redis]


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "fakeredis":
        server = fakeredis.FakeServer(version=(7,))
        yield Backend(
            "fakeredis",
            lambda: fakeredis.FakeRedis(server=server, decode_responses=True),
            lambda: fakeredis.FakeAsyncRedis(server=server, decode_responses=True),
        )
        return
    client = real_redis_or_skip()
    yield Backend(
        "redis",
        lambda: redis.Redis.from_url(REDIS_URL, decode_responses=True),
        lambda: aioredis.Redis.from_url(REDIS_URL, decode_responses=True),
    )
    client.flushdb()
    client.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 26, 12, 0, tzinfo=BEIJING))


class AsyncAsSync:
    """Drives an :class:`AsyncLimiter` from sync tests, so every engine test runs both ways."""

    def __init__(self, engine: AsyncLimiter, loop: asyncio.AbstractEventLoop) -> None:
        self.engine = engine
        self.loop = loop

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.engine, name)
        if inspect.iscoroutinefunction(attribute):
            return lambda *args, **kwargs: self.loop.run_until_complete(attribute(*args, **kwargs))
        return attribute


EngineFactory = Callable[..., Any]


class Engines:
    """The engines one test makes in one mode: the sync facade, or the async engine driven
    synchronously (:class:`AsyncAsSync`); :meth:`close` closes them all."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.loop = asyncio.new_event_loop()
        self.made: list[Any] = []

    def add(self, sync: Callable[[], Limiter], asynchronous: Callable[[], AsyncLimiter]) -> Any:
        """The engine of this mode, built by ``sync`` or ``asynchronous``."""
        engine = sync() if self.mode == "sync" else AsyncAsSync(asynchronous(), self.loop)
        self.made.append(engine)
        return engine

    def close(self) -> None:
        for engine in self.made:
            if isinstance(engine, AsyncAsSync):
                self.loop.run_until_complete(engine.engine.aclose())
            else:
                engine.close()
        self.loop.close()


@pytest.fixture(params=["sync", "async"])
def make_engine(
    request: pytest.FixtureRequest, backend: Backend, clock: ManualClock
) -> Iterator[EngineFactory]:
    """Builds engines (sync facade, or the async engine driven synchronously) on ``backend``."""
    engines = Engines(request.param)

    def make(
        *, catalog: Catalog | None = None, own_clock: ManualClock | None = None, **settings: Any
    ) -> Any:
        """An engine with these settings; ``catalog`` and ``own_clock`` replace the shipped
        catalog and the shared ``clock`` fixture."""
        settings.setdefault("cache_seconds", 0)
        config = Settings(redis_url="memory://unused", **settings)
        chosen = clock if own_clock is None else own_clock
        return engines.add(
            lambda: Limiter(
                SyncStore(backend.sync_client()), settings=config, catalog=catalog, clock=chosen
            ),
            lambda: AsyncLimiter(
                AsyncStore(backend.async_client()), settings=config, catalog=catalog, clock=chosen
            ),
        )

    yield make
    engines.close()


@pytest.fixture
def client(backend: Backend) -> Iterator[redis.Redis]:
    """A plain client of the backend's data, to read (or plant) what the scripts store."""
    plain = backend.sync_client()
    yield plain
    plain.close()


def keys_of(engine: Any, app: str) -> AppKeys:
    """The Redis keys of ``app`` under the engine's key prefix, to read what scripts store."""
    return KeyLayout(engine.settings.key_prefix).app(app)


def at(*parts: int) -> datetime:
    """An instant in Beijing time: at(2026, 11, 30, 23, 59, 59)."""
    return datetime(*parts, tzinfo=BEIJING)  # type: ignore[misc]


@pytest.fixture
def engine(make_engine: EngineFactory) -> Any:
    return make_engine()


# -- the example IM backend -----------------------------------------------------------------------
# Its fixture (im) lives with its helpers in tests/example_support.py, which imports this module:
# loaded as a plugin once this module is done, not imported from here.
pytest_plugins.append("tests.example_support")
