"""The Redis stores: run the registered Lua scripts and pipelines that operations ask for, one
with ``redis``, one with ``redis.asyncio``, decode each reply, and turn a connection failure
into :class:`StoreUnavailable`. Also builds clients from a ``LIMITER_REDIS_URL``."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import resources
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript, Script
from redis.exceptions import NoScriptError

from limiter.errors import ConfigurationError, StoreUnavailable
from limiter.store.requests import Pipeline, Request, ScriptCall

# The helpers every script shares, prepended to each (not a script itself).
LIB = "lib.lua"

_OUTAGES = (
    redis.ConnectionError,  # includes BusyLoadingError (the server is loading its data)
    redis.TimeoutError,
    redis.exceptions.ReadOnlyError,  # a replica after a failover
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    OSError,
)
# Replies that mean "not now" rather than "your command is wrong".
_BUSY_REPLIES = (
    "BUSY",
    "LOADING",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "MISCONF",  # cannot persist (a full disk): writes refused until it can
    "NOREPLICAS",  # min-replicas-to-write not met
)


@contextlib.contextmanager
def _outages() -> Iterator[None]:
    """Turns a connection failure (or a "not now" reply) into :class:`StoreUnavailable`."""
    try:
        yield
    except (redis.RedisError, OSError) as exc:
        outage = _outage(exc)
        if outage is None:
            raise
        raise outage from exc


def _outage(exc: Exception) -> StoreUnavailable | None:
    # In a pipeline redis-py prefixes the reply: "Command # 1 (...) of pipeline caused error: BUSY"
    reply = str(exc).rsplit("caused error: ", 1)[-1]
    if isinstance(exc, _OUTAGES) or (
        isinstance(exc, redis.ResponseError) and reply.startswith(_BUSY_REPLIES)
    ):
        return StoreUnavailable(f"Redis unavailable: {exc}")
    return None


@functools.cache
def script_sources() -> dict[str, str]:
    """Every script of the ``lua`` folder by name, with the shared helpers of ``lib.lua`` in
    front (a new ``.lua`` file is a new script: no list to keep in sync)."""
    folder = resources.files("limiter.store").joinpath("lua")
    lib = folder.joinpath(LIB).read_text(encoding="utf-8")
    return {
        entry.name.removesuffix(".lua"): lib + "\n" + entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda entry: entry.name)
        if entry.name.endswith(".lua") and entry.name != LIB
    }


class SyncStore:
    """Executes requests on a blocking client (``decode_responses=True``)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._scripts: dict[str, Script] = {
            name: client.register_script(source) for name, source in script_sources().items()
        }
        self._sender: ThreadPoolExecutor | None = None  # see submit
        self._sender_pid = 0  # the process that started it: a forked child starts its own
        self._sender_lock = threading.Lock()

    def execute(self, request: Request) -> Any:
        with _outages():
            if isinstance(request, ScriptCall):
                # EVALSHA straight away: redis-py's Script.__call__ copies the arguments and
                # imports on every call. Only NOSCRIPT (a restarted or flushed server) goes
                # through the Script, which loads the script and runs it again.
                script, keys = self._scripts[request.script], request.keys
                try:
                    reply = self.client.evalsha(script.sha, len(keys), *keys, *request.args)
                except NoScriptError:
                    reply = script(keys=keys, args=request.args)
                return request.decode(reply)
            pipe = self.client.pipeline(transaction=False)
            for command in request.commands:
                pipe.execute_command(*command)  # type: ignore[no-untyped-call]
            return request.decode(pipe.execute())

    def submit(self, request: Pipeline[Any]) -> Future[list[Any]]:
        """Send a pipeline from a background thread and return at once, so the caller can
        prepare the next one while Redis works (a reconcile's loads). The commands are packed
        here, in the calling thread; the thread only writes the bytes and reads the replies,
        which hold Python's GIL little, so the two really overlap. One thread: loads submitted
        one after another are sent one after another."""
        pool = self.client.connection_pool
        with _outages():
            packer = pool.get_connection()  # it knows the client's encoding
        try:
            packed = packer.pack_commands(request.commands)  # type: ignore[no-untyped-call]
        finally:
            pool.release(packer)
        with self._sender_lock:
            if self._sender is None or self._sender_pid != os.getpid():
                self._sender = ThreadPoolExecutor(1, thread_name_prefix="limiter-load")
                self._sender_pid = os.getpid()
            return self._sender.submit(self._send_packed, packed, len(request.commands))

    def _send_packed(self, packed: list[bytes], replies: int) -> list[Any]:
        pool = self.client.connection_pool
        with _outages():
            connection = pool.get_connection()
            try:
                connection.send_packed_command(packed)  # type: ignore[no-untyped-call]
                return [connection.read_response() for _ in range(replies)]
            except BaseException:
                # replies may be left unread on it
                connection.disconnect()  # type: ignore[no-untyped-call]
                raise
            finally:
                pool.release(connection)

    def close(self) -> None:
        with self._sender_lock:
            if self._sender is not None and self._sender_pid == os.getpid():
                self._sender.shutdown()
            self._sender = None
        self.client.close()


class AsyncStore:
    """Executes requests on an asyncio client (``decode_responses=True``)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._scripts: dict[str, AsyncScript] = {
            name: client.register_script(source) for name, source in script_sources().items()
        }

    async def execute(self, request: Request) -> Any:
        with _outages():
            if isinstance(request, ScriptCall):
                # As in SyncStore.execute: EVALSHA, and the Script only on NOSCRIPT.
                script, keys = self._scripts[request.script], request.keys
                try:
                    reply = await self.client.evalsha(script.sha, len(keys), *keys, *request.args)
                except NoScriptError:
                    reply = await script(keys=keys, args=request.args)
                return request.decode(reply)
            pipe = self.client.pipeline(transaction=False)
            for command in request.commands:
                pipe.execute_command(*command)
            return request.decode(await pipe.execute())

    async def close(self) -> None:
        await self.client.aclose()


# -- building clients from a URL ---------------------------------------------------------------

_memory_servers: dict[str, Any] = {}


def _memory_server(url: str) -> Any:
    """One in-process server per ``memory://name`` URL, shared by the sync and async clients."""
    try:
        import fakeredis
    except ImportError:
        raise ConfigurationError(
            "memory:// needs the in-process store: pip install 'limiter[memory]'"
        ) from None
    if url not in _memory_servers:
        _memory_servers[url] = fakeredis.FakeServer(version=(7,))
    return _memory_servers[url]


def sync_client(url: str) -> redis.Redis:
    if url.startswith("memory://"):
        import fakeredis

        client: redis.Redis = fakeredis.FakeRedis(server=_memory_server(url), decode_responses=True)
        return client
    return redis.Redis.from_url(url, decode_responses=True)


def async_client(url: str) -> aioredis.Redis:
    if url.startswith("memory://"):
        import fakeredis

        client: aioredis.Redis = fakeredis.FakeAsyncRedis(
            server=_memory_server(url), decode_responses=True
        )
        return client
    # One immediate retry on a connection error: a pooled connection that a restarted server
    # closed fails its first command (the sync pool checks a connection before use, the asyncio
    # pool does not). A script whose reply was lost may run twice: its second run answers
    # "already" for what the first added, and the state is the same.
    retry = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
    return aioredis.Redis.from_url(url, decode_responses=True, retry=retry)
