"""The Redis stores: run the registered Lua scripts and pipelines that operations ask for, one
with ``redis``, one with ``redis.asyncio``, decode each reply, and turn a connection failure
into :class:`StoreUnavailable` (clients are built from a URL in :mod:`limiter.store.clients`)."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import Any

import hiredis
import redis
import redis.asyncio.cluster as aiocluster
import redis.cluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError

from limiter.errors import StoreUnavailable
from limiter.store.clients import AsyncClient, SyncClient
from limiter.store.requests import Arg, Pipeline, Request, ScriptCall

# The helpers every script shares, prepended to each (not a script itself).
LIB = "lib.lua"
# Keys per SCAN call of a maintenance walk.
SCAN_COUNT = 1000

_OUTAGES = (
    redis.ConnectionError,  # includes BusyLoadingError (the server is loading its data)
    redis.TimeoutError,
    redis.exceptions.ReadOnlyError,  # a replica after a failover
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ClusterError,  # CLUSTERDOWN, MASTERDOWN
    redis.exceptions.TryAgainError,  # a slot being migrated
    redis.exceptions.SlotNotCoveredError,
    OSError,
)
# A cluster client's own errors are outages (no node reachable, slots not covered, a node
# gone), except these, which mean the command itself cannot run on a cluster: a bug.
_CLUSTER_BUGS = (
    "all keys must map to the same key slot",
    "No way to dispatch",
    "Invalid args",
    "not implemented",
    "is blocked",
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
    except (redis.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
        outage = _outage(exc)
        if outage is None:
            raise
        raise outage from exc


def _outage(exc: Exception) -> StoreUnavailable | None:
    # In a pipeline redis-py prefixes the reply: "Command # 1 (...) of pipeline caused error: BUSY"
    reply = str(exc).rsplit("caused error: ", 1)[-1]
    if isinstance(exc, redis.exceptions.AskError):  # MOVED or ASK to a plain client
        return StoreUnavailable(
            f"Redis unavailable: {exc} (a Redis Cluster node: use a redis+cluster:// URL)"
        )
    if (
        isinstance(exc, _OUTAGES)
        or (isinstance(exc, redis.ResponseError) and reply.startswith(_BUSY_REPLIES))
        or (
            isinstance(exc, redis.exceptions.RedisClusterException)
            and not any(bug in str(exc) for bug in _CLUSTER_BUGS)
        )
    ):
        return StoreUnavailable(f"Redis unavailable: {exc}")
    return None


async def _on_node(node: aiocluster.ClusterNode, request: Request, known: dict[str, Script]) -> Any:
    """``request``'s reply from one cluster node (the first error of a pipeline is raised)."""
    if isinstance(request, ScriptCall):
        script, keys = known[request.script], request.keys
        try:
            return await node.execute_command(
                "EVALSHA", script.sha, len(keys), *keys, *request.args
            )
        except NoScriptError:
            return await node.execute_command(
                "EVAL", script.source, len(keys), *keys, *request.args
            )
    commands = [
        aiocluster.PipelineCommand(n, *command) for n, command in enumerate(request.commands)
    ]
    await node.execute_pipeline(commands)
    for command in commands:
        if isinstance(command.result, Exception):
            raise command.result
    return [command.result for command in commands]


# What a call sent straight to a cluster node hands over to the cluster client: a moved slot,
# a node that failed or is failing over, a slot being migrated.
_REROUTE = (
    redis.exceptions.AskError,  # and MovedError
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,  # a demoted master
)


def packed_commands(commands: Sequence[tuple[Arg, ...]], kwargs: dict[str, Any]) -> list[bytes]:
    """The commands in Redis's protocol, for a connection made with ``kwargs`` (its
    ``encoding``). hiredis packs in C: redis-py's own packer costs about 2 us an argument in
    Python, which was most of a reconcile's Python time. (hiredis's stubs type the argument
    as a tuple of one element: hence the ignores.)"""
    encoding = kwargs.get("encoding", "utf-8")
    if codecs.lookup(encoding).name == "utf-8":  # hiredis encodes text as UTF-8
        return [hiredis.pack_command(command) for command in commands]  # type: ignore[arg-type]
    errors = kwargs.get("encoding_errors", "strict")
    return [
        hiredis.pack_command(
            tuple(arg.encode(encoding, errors) if isinstance(arg, str) else arg for arg in command)  # type: ignore[arg-type]
        )
        for command in commands
    ]


@dataclass(frozen=True)
class Script:
    """A registered script: its source and the SHA1 that EVALSHA names it by."""

    source: str
    sha: str

    @classmethod
    def of(cls, source: str) -> Script:
        return cls(source, hashlib.sha1(source.encode()).hexdigest())


@functools.cache
def scripts() -> dict[str, Script]:
    """Every script by name (see :func:`script_sources`)."""
    return {name: Script.of(source) for name, source in script_sources().items()}


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
    """Executes requests on a blocking client (``decode_responses=True``): a ``redis.Redis``
    or a ``redis.cluster.RedisCluster``."""

    def __init__(self, client: SyncClient) -> None:
        self.client = client
        self._scripts = scripts()
        self._sender: ThreadPoolExecutor | None = None  # see submit
        self._sender_pid = 0  # the process that started it: a forked child starts its own
        self._sender_lock = threading.Lock()

    def execute(self, request: Request) -> Any:
        with _outages():
            if isinstance(request, ScriptCall):
                # EVALSHA straight away. On NOSCRIPT (a restarted, flushed or newly promoted
                # server) EVAL of the source, which Redis also caches: it goes to the node that
                # owns the keys, as EVALSHA did, never to every node (a cluster with one node
                # down must keep serving the others).
                script, keys = self._scripts[request.script], request.keys
                client = self._client_of(keys[0])
                try:
                    try:
                        reply = client.evalsha(script.sha, len(keys), *keys, *request.args)
                    except NoScriptError:
                        reply = client.eval(script.source, len(keys), *keys, *request.args)
                except _REROUTE:
                    if client is self.client:
                        raise
                    # the map of the slots is stale or the node is gone: the cluster client
                    # refreshes it, follows redirects and retries (a script whose reply was
                    # lost may run twice: its second run answers "already")
                    reply = self.client.evalsha(script.sha, len(keys), *keys, *request.args)
                return request.decode(reply)
            pipe = self.client.pipeline(transaction=False)
            for command in request.commands:
                pipe.execute_command(*command)
            return request.decode(pipe.execute())

    def _client_of(self, key: str) -> Any:
        """The client to send a script to: on a cluster, the plain client of the node the
        cluster client's map gives for ``key`` (redis-py's cluster path costs a blocking call
        about a fifth more than a plain client's); otherwise the client itself."""
        if isinstance(self.client, redis.cluster.RedisCluster):
            node = self.client.get_node_from_key(key)  # type: ignore[no-untyped-call]
            if node is not None and node.redis_connection is not None:
                return node.redis_connection
        return self.client

    def submit(self, request: Pipeline[Any]) -> Future[list[Any]]:
        """Send a pipeline from a background thread and return at once, so the caller can
        prepare the next one while Redis works (a reconcile's loads). The commands are packed
        here, in the calling thread; the thread only writes the bytes and reads the replies,
        which hold Python's GIL little, so the two really overlap. One thread: loads submitted
        one after another are sent one after another."""
        with _outages():
            pool = self._pool_of(request)
        packed = packed_commands(request.commands, pool.connection_kwargs)
        with self._sender_lock:
            if self._sender is None or self._sender_pid != os.getpid():
                self._sender = ThreadPoolExecutor(1, thread_name_prefix="limiter-load")
                self._sender_pid = os.getpid()
            return self._sender.submit(self._send_packed, pool, packed, len(request.commands))

    def _pool_of(self, request: Pipeline[Any]) -> redis.ConnectionPool:
        """The connection pool to send ``request`` on: the client's own, or on a cluster that
        of the node serving the slot of its first key (a load names one app's keys, so one
        slot; a slot that moved meanwhile answers MOVED, an outage)."""
        if isinstance(self.client, redis.cluster.RedisCluster):
            key = request.commands[0][1]
            node = self.client.get_node_from_key(key)  # type: ignore[no-untyped-call]
            if node is None or node.redis_connection is None:
                raise redis.exceptions.SlotNotCoveredError(f"no node serves {key}")
            pool: redis.ConnectionPool = node.redis_connection.connection_pool
            return pool
        return self.client.connection_pool

    def _send_packed(
        self, pool: redis.ConnectionPool, packed: list[bytes], replies: int
    ) -> list[Any]:
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

    def scan(self, pattern: str, kind: str) -> list[str]:
        with _outages():
            return list(self.client.scan_iter(match=pattern, count=SCAN_COUNT, _type=kind))

    def close(self) -> None:
        with self._sender_lock:
            if self._sender is not None and self._sender_pid == os.getpid():
                self._sender.shutdown()
            self._sender = None
        self.client.close()


class AsyncStore:
    """Executes requests on an asyncio client (``decode_responses=True``): a
    ``redis.asyncio.Redis`` or a ``redis.asyncio.cluster.RedisCluster``."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self._scripts = scripts()

    async def execute(self, request: Request) -> Any:
        with _outages():
            node = self._node_of(request)
            if node is not None:
                try:
                    return request.decode(await _on_node(node, request, self._scripts))
                except _REROUTE:
                    pass  # as in SyncStore.execute: the cluster client takes the call over
            if isinstance(request, ScriptCall):
                # As in SyncStore.execute: EVALSHA, and EVAL of the source on NOSCRIPT.
                script, keys = self._scripts[request.script], request.keys
                try:
                    reply = await self.client.evalsha(script.sha, len(keys), *keys, *request.args)
                except NoScriptError:
                    reply = await self.client.eval(script.source, len(keys), *keys, *request.args)
                return request.decode(reply)
            pipe = self.client.pipeline(transaction=False)
            for command in request.commands:
                pipe.execute_command(*command)
            return request.decode(await pipe.execute())

    def submit(self, request: Pipeline[Any]) -> asyncio.Task[list[Any]]:
        """Send a pipeline from a task of its own (a reconcile's loads) and return at once:
        the caller prepares the next one while Redis works, and awaits the task for the
        replies. Each load goes on a connection of its own to the server (on a cluster, the
        node of its first key), packed by hiredis. Loads only add (set members, hash fields),
        so two in flight at once may interleave: what they add in all is the same in any
        order."""
        return asyncio.ensure_future(self._send_packed(request))

    async def _send_packed(self, request: Pipeline[Any]) -> list[Any]:
        with _outages():
            kind: type[AbstractConnection]
            if isinstance(self.client, aiocluster.RedisCluster):
                await self.client.initialize()  # the map of the slots, if not known yet
                node = self._node_of(request)
                if node is None:
                    key = request.commands[0][1]
                    raise redis.exceptions.SlotNotCoveredError(f"no node serves {key}")
                kind, kwargs = node.connection_class, node.connection_kwargs
            else:
                pool = self.client.connection_pool
                kind, kwargs = pool.connection_class, pool.connection_kwargs
            packed = packed_commands(request.commands, kwargs)
            connection = kind(**kwargs)
            try:
                await connection.send_packed_command(packed)
                return [await connection.read_response() for _ in request.commands]
            finally:
                await connection.disconnect()

    def _node_of(self, request: Request) -> aiocluster.ClusterNode | None:
        """On a cluster, the node the client's map names for the request's first key (every
        request names one app's keys, so one slot); None before the map is known. Sent there
        straight, a call skips redis-py's asyncio cluster path, which refreshes a stale map
        through one node whatever the call is for: while that node is down, the calls of
        every shard failed."""
        if not isinstance(self.client, aiocluster.RedisCluster):
            return None
        key = request.keys[0] if isinstance(request, ScriptCall) else request.commands[0][1]
        try:
            return self.client.get_node_from_key(str(key))
        except redis.exceptions.SlotNotCoveredError:
            return None

    async def scan(self, pattern: str, kind: str) -> list[str]:
        with _outages():
            found = self.client.scan_iter(match=pattern, count=SCAN_COUNT, _type=kind)
            return [key async for key in found]

    async def close(self) -> None:
        await self.client.aclose()
