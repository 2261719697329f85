"""Clients built from a ``LIMITER_REDIS_URL``: one Redis server (``redis://``, ``rediss://``,
``unix://``), a Redis Cluster (``redis+cluster://host:port[,host:port...]``, TLS with
``rediss+cluster://``, database 0 only), or an in-process server (``memory://name``)."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry

from limiter.errors import ConfigurationError
from limiter.urls import ClusterAddress, is_cluster

SyncClient = redis.Redis | redis.cluster.RedisCluster
AsyncClient = aioredis.Redis | aiocluster.RedisCluster

# A cluster client retries a command that met a connection error, a MOVED or a CLUSTERDOWN
# after refreshing its map of the slots: a few quick tries, so that a redirect or a completed
# failover is followed, and a shard that is down fails its calls as an outage at once instead of
# holding them for seconds (the other shards go on serving).
CLUSTER_RETRIES = 2
CLUSTER_BACKOFF = (0.02, 0.2)  # base and cap of the jittered exponential backoff, seconds

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


def sync_client(url: str) -> SyncClient:
    if url.startswith("memory://"):
        import fakeredis

        client: redis.Redis = fakeredis.FakeRedis(server=_memory_server(url), decode_responses=True)
        return client
    if is_cluster(url):
        address = ClusterAddress.parse(url)
        return redis.cluster.RedisCluster(
            retry=Retry(ExponentialWithJitterBackoff(*CLUSTER_BACKOFF), CLUSTER_RETRIES),
            startup_nodes=[
                redis.cluster.ClusterNode(host, port)  # type: ignore[no-untyped-call]
                for host, port in address.nodes
            ],
            username=address.username,
            password=address.password,
            ssl=address.tls,
            decode_responses=True,
            # keep serving the slots that have a master while another shard fails over
            require_full_coverage=False,
        )
    return redis.Redis.from_url(url, decode_responses=True)


def async_client(url: str) -> AsyncClient:
    if url.startswith("memory://"):
        import fakeredis

        client: aioredis.Redis = fakeredis.FakeAsyncRedis(
            server=_memory_server(url), decode_responses=True
        )
        return client
    if is_cluster(url):
        address = ClusterAddress.parse(url)
        return aiocluster.RedisCluster(
            retry=AsyncRetry(ExponentialWithJitterBackoff(*CLUSTER_BACKOFF), CLUSTER_RETRIES),
            startup_nodes=[aiocluster.ClusterNode(host, port) for host, port in address.nodes],
            username=address.username,
            password=address.password,
            ssl=address.tls,
            decode_responses=True,
            # keep serving the slots that have a master while another shard fails over
            require_full_coverage=False,
        )
    # One immediate retry on a connection error: a pooled connection that a restarted server
    # closed fails its first command (the sync pool checks a connection before use, the asyncio
    # pool does not). A script whose reply was lost may run twice: its second run answers
    # "already" for what the first added, and the state is the same.
    retry = AsyncRetry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
    return aioredis.Redis.from_url(url, decode_responses=True, retry=retry)
