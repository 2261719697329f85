"""Shared fixtures: one store fixture over fakeredis, the real server and a real Redis Cluster,
engines over it.

The real server is ``LIMITER_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``), the
cluster ``LIMITER_TEST_CLUSTER_URL`` (default ``redis+cluster://127.0.0.1:7000``, as ``.ci/run``
starts it: ``python -m bench.redis_cluster start``). When one does not answer, its tests are
skipped locally and fail when ``CI`` is set. Both are flushed.
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
import redis.cluster
from redis.exceptions import RedisClusterException

from bench.common import enroll as straight_in
from limiter import AsyncLimiter, AsyncStore, Catalog, Limiter, Settings, SyncStore
from limiter.store.clients import async_client, sync_client
from limiter.store.keys import NAMESPACES, AppKeys, KeyLayout
from limiter.testing import ManualClock

pytest_plugins = ["tests.figures"]

REDIS_URL = os.environ.get("LIMITER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CLUSTER_URL = os.environ.get("LIMITER_TEST_CLUSTER_URL", "redis+cluster://127.0.0.1:7000")
REAL_URLS = {"redis": REDIS_URL, "cluster": CLUSTER_URL}
BEIJING = timezone(timedelta(hours=8))
APP = "1400000001"


def real_client_or_skip(url: str) -> Any:
    """A client of a real test server or cluster, flushed; skip (locally) or fail (CI)
    without one."""
    try:
        client = sync_client(url)
        client.ping()
    except (redis.ConnectionError, RedisClusterException) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs Redis at {url}: {exc}")
        pytest.skip(f"no Redis at {url}")
    flush(client)
    return client


def real_redis_or_skip() -> redis.Redis:
    """A client of the real test server (not the cluster), flushed."""
    client: redis.Redis = real_client_or_skip(REDIS_URL)
    return client


def is_cluster(client: Any) -> bool:
    return isinstance(client, redis.cluster.RedisCluster)


def flush(client: Any) -> None:
    """Empty the test database (every master of a cluster)."""
    if is_cluster(client):
        client.flushdb(target_nodes=redis.cluster.RedisCluster.PRIMARIES)
    else:
        client.flushdb()


def all_keys(client: Any, pattern: str = "*") -> set[str]:
    """Every key matching ``pattern`` (on a cluster, from every master)."""
    if is_cluster(client):
        return set(client.keys(pattern, target_nodes=redis.cluster.RedisCluster.PRIMARIES))
    return set(client.scan_iter(match=pattern, count=1000))


@dataclass
class Backend:
    """Makes clients of one data set: a fakeredis server, the real test database or the real
    test cluster (``url``: how an engine would name it; None for fakeredis)."""

    name: str
    sync_client: Callable[[], Any]
    async_client: Callable[[], Any]
    url: str | None = None


REAL = [
    pytest.param(name, marks=[pytest.mark.redis, getattr(pytest.mark, name)]) for name in REAL_URLS
]


@pytest.fixture(params=["fakeredis", *REAL])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "fakeredis":
        server = fakeredis.FakeServer(version=(7,))
        yield Backend(
            "fakeredis",
            lambda: fakeredis.FakeRedis(server=server, decode_responses=True),
            lambda: fakeredis.FakeAsyncRedis(server=server, decode_responses=True),
        )
        return
    url = REAL_URLS[request.param]
    client = real_client_or_skip(url)
    yield Backend(request.param, lambda: sync_client(url), lambda: async_client(url), url)
    flush(client)
    client.close()


@pytest.fixture(params=REAL)
def real_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of each real store, the server and the cluster, flushed before and after."""
    url = REAL_URLS[request.param]
    client = real_client_or_skip(url)
    yield url
    flush(client)
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


Enroll = Callable[..., None]


@pytest.fixture
def enroll(backend: Backend) -> Iterator[Enroll]:
    """``enroll(app, *ids, prefix="limiter")``: make ids registered accounts of ``app`` as set-up
    (accounts first: relations name only accounts), straight into the app's users set, so
    past the ``users`` limit and with no audit entry, for tests about something else."""
    plain = backend.sync_client()

    def enroll(app: str, *ids: str, prefix: str = "limiter") -> None:
        straight_in(plain, KeyLayout(prefix).app(app), list(ids))

    yield enroll
    plain.close()


def keys_of(engine: Any, app: str) -> AppKeys:
    """The Redis keys of ``app`` under the engine's key prefix, to read what scripts store."""
    return KeyLayout(engine.settings.key_prefix).app(app)


def forget_app(client: Any, app: str, prefix: str = "limiter") -> None:
    """Delete every key of one app (only its: other tests may share the database)."""
    keys = all_keys(client, f"{prefix}:{{{app}}}:*")
    if keys:
        client.delete(*keys)


def rebuild_keys(client: Any, app: str, prefix: str = "limiter") -> list[str]:
    """The keys of an app that belong to a reconcile, not to its live state: a rebuild's
    indexes, the ``rebuilds`` hash, and relation keys of any generation but the live one."""
    base = f"{prefix}:{{{app}}}:"
    live = client.get(base + "gen") or "0"
    found = []
    for key in all_keys(client, base + "*"):
        name, _, rest = key.removeprefix(base).partition(":")
        if name in ("rebuild", "rebuilds") or (
            name in NAMESPACES and rest.partition(":")[0] != live
        ):
            found.append(key)
    return sorted(found)


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
