"""The engine on a Redis Cluster: cluster URLs, cluster errors as outages, scripts reloaded on
their own node, and the per-app data marker that sees one flushed shard."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.cluster
from redis.exceptions import RedisClusterException, SlotNotCoveredError

from limiter import Limiter, Settings, StoreUnavailable
from limiter.errors import ConfigurationError
from limiter.store.keys import KeyLayout
from limiter.store.redis import _outage
from limiter.urls import ClusterAddress
from tests.conftest import CLUSTER_URL, flush, real_client_or_skip

LAYOUT = KeyLayout()


# -- URLs ---------------------------------------------------------------------------------------


def test_a_cluster_url_names_its_seed_nodes_credentials_and_tls() -> None:
    address = ClusterAddress.parse("rediss+cluster://me:p%40ss@10.0.0.1:7000,[::1]:7001/0")
    assert address == ClusterAddress((("10.0.0.1", 7000), ("::1", 7001)), "me", "p@ss", True)
    assert ClusterAddress.parse("redis+cluster://h:1").tls is False


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://h:7000/1", "only database 0"),
        ("redis+cluster://h", "host:port"),
        ("redis+cluster://h:7000,h:notaport", "host:port"),
        ("redis+cluster://h:70000", "host:port"),
        ("redis+cluster://h:7000?timeout=1", "no query string"),
    ],
)
def test_a_bad_cluster_url_is_refused_when_settings_load(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        ClusterAddress.parse(url)
    with pytest.raises(ValueError, match=says):
        Settings(redis_url=url)


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        SlotNotCoveredError("slot 1 is not covered"),
        RedisClusterException("Redis Cluster cannot be connected. Please provide ..."),
        redis.exceptions.ClusterDownError("The cluster is down"),
        redis.exceptions.MasterDownError("Link with MASTER is down"),
        redis.exceptions.TryAgainError("TRYAGAIN"),
        redis.exceptions.MovedError("3999 127.0.0.1:6381"),
    ],
)
def test_every_cluster_error_that_means_not_now_is_an_outage(error: Exception) -> None:
    assert isinstance(_outage(error), StoreUnavailable)


def test_a_command_that_cannot_run_on_a_cluster_is_a_bug_not_an_outage() -> None:
    assert (
        _outage(RedisClusterException("EVALSHA - all keys must map to the same key slot")) is None
    )


def test_moved_to_a_plain_client_says_to_use_a_cluster_url() -> None:
    outage = _outage(redis.exceptions.MovedError("3999 127.0.0.1:6381"))
    assert outage is not None and "redis+cluster://" in str(outage)


# -- on the real cluster -----------------------------------------------------------------------


@pytest.fixture
def cluster() -> Iterator[Any]:
    client = real_client_or_skip(CLUSTER_URL)
    yield client
    flush(client)
    client.close()


def apps_on_two_masters(client: Any) -> tuple[str, str, Any]:
    """Two apps on different masters, and the first one's master."""
    first = "1400000001"
    node = client.get_node_from_key(LAYOUT.app(first).users)
    for n in range(2, 200):
        other = f"14{n:08d}"
        if client.get_node_from_key(LAYOUT.app(other).users).name != node.name:
            return first, other, node
    raise AssertionError("every app on one master")


@pytest.mark.redis
@pytest.mark.cluster
def test_a_flushed_shard_is_detected_for_its_own_apps_only(
    cluster: Any, caplog: pytest.LogCaptureFixture
) -> None:
    engine = Limiter.from_settings(Settings(redis_url=CLUSTER_URL, marker_check_seconds=0))
    flushed, kept, node = apps_on_two_masters(cluster)
    for app in (flushed, kept):
        engine.register_users(app, ["a"])
    cluster.flushdb(target_nodes=node)
    with caplog.at_level(logging.ERROR, logger="limiter"):
        assert engine.usage(kept).users == 1
        assert engine.data_status().resets == 0
        assert engine.usage(flushed).users == 0
    assert engine.data_status().resets == 1
    assert f"app {flushed}" in caplog.text and f"app {kept}" not in caplog.text
    engine.close()


@pytest.mark.redis
@pytest.mark.cluster
def test_an_empty_script_cache_is_filled_on_the_keys_node_only(cluster: Any) -> None:
    engine = Limiter.from_settings(Settings(redis_url=CLUSTER_URL))
    app, _, node = apps_on_two_masters(cluster)
    engine.register_users(app, ["a"])
    for primary in cluster.get_primaries():
        cluster.execute_command("SCRIPT", "FLUSH", target_nodes=primary)
        cluster.execute_command("CONFIG", "RESETSTAT", target_nodes=primary)

    assert engine.register_users(app, ["b"]).added == ("b",)

    for primary in cluster.get_primaries():
        stats = cluster.info("commandstats", target_nodes=primary)
        loads = stats.get("cmdstat_script|load", {}).get("calls", 0)
        evals = stats.get("cmdstat_eval", {}).get("calls", 0)
        assert loads == 0  # never a broadcast SCRIPT LOAD
        assert evals == (1 if primary.name == node.name else 0)
    engine.close()


@pytest.mark.redis
@pytest.mark.cluster
def test_a_stale_map_of_the_slots_is_followed_to_the_right_node(cluster: Any) -> None:
    """The blocking store sends a script straight to the node its map names; when the map is
    stale (a slot moved, a failover), the node answers MOVED and the cluster client takes
    the call there. Made stale here by pointing the app's slot at another master."""
    engine = Limiter.from_settings(Settings(redis_url=CLUSTER_URL))
    app, _, node = apps_on_two_masters(cluster)
    engine.register_users(app, ["a"])
    client = engine.store.client
    slot = client.keyslot(LAYOUT.app(app).users)
    wrong = next(n for n in client.get_primaries() if n.name != node.name)
    client.nodes_manager.slots_cache[slot] = [wrong]

    assert engine.register_users(app, ["b"]).added == ("b",)

    assert client.get_node_from_key(LAYOUT.app(app).users).name == node.name  # map corrected
    assert engine.usage(app).users == 2
    engine.close()
