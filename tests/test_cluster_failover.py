"""A Redis Cluster losing a master: a test-owned cluster (3 masters, 3 replicas, a 1 s node
timeout), decisions in a loop on an app of every shard, one master killed with SIGKILL. The
healthy shards never fail; the killed shard's decisions fail only as ``StoreUnavailable`` and
succeed again within 2 s of its replica's promotion; no acknowledged write is lost."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import redis.cluster

from bench.redis_cluster import ClusterError, LocalCluster, binaries, free_base_port
from limiter import AsyncLimiter, BatchResult, Limiter, Outcome, Settings, StoreUnavailable
from limiter.store.keys import KeyLayout
from tests.conftest import Engines
from tests.figures import Recorder

pytestmark = [pytest.mark.redis, pytest.mark.cluster]

NODE_TIMEOUT_MS = 1000
BEFORE_SECONDS = 1.0  # decisions before the kill
RECOVERY_SECONDS = 2.0  # the killed shard serves again this soon after the promotion
AFTER_SECONDS = 3.0  # decisions after the promotion
GIVE_UP_SECONDS = 20.0  # no promotion by then fails the test
LAYOUT = KeyLayout()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    try:
        binaries()
    except ClusterError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    owned = LocalCluster(
        tmp_path / "cluster", port=free_base_port(), node_timeout_ms=NODE_TIMEOUT_MS
    )
    owned.start()
    yield owned
    owned.stop()


@dataclass
class Decision:
    at: float  # seconds since the loop started
    port: int  # the master that served the app when the loop started
    app: str
    user: str
    outcome: str  # "ok", "unavailable" or the unexpected exception


@dataclass
class Timeline:
    killed: float = 0.0
    promoted: float | None = None
    decisions: list[Decision] = field(default_factory=list)

    def of(self, port: int) -> list[Decision]:
        return [d for d in self.decisions if d.port == port]


def apps_by_master(cluster: LocalCluster) -> dict[int, str]:
    """An app whose keys are on each master."""
    client = redis.cluster.RedisCluster(host="127.0.0.1", port=cluster.port)
    found: dict[int, str] = {}
    for n in range(1000):
        app = f"14{n:08d}"
        node = client.get_node_from_key(LAYOUT.app(app).users)
        found.setdefault(node.port, app)
    client.close()
    assert len(found) == 3
    return found


def replica_of(cluster: LocalCluster, master: int) -> int:
    for port in cluster.ports:
        if cluster.client(port).info("replication").get("master_port") == master:
            return port
    raise AssertionError(f"no replica of {master}")


def promoted(cluster: LocalCluster, port: int) -> bool:
    try:
        return bool(cluster.client(port).info("replication")["role"] == "master")
    except (redis.RedisError, OSError):
        return False


def run_failover(
    cluster: LocalCluster, decide: Callable[[str, str], BatchResult]
) -> tuple[Timeline, int, dict[int, str]]:
    """Decisions in a loop on every shard's app; the first master killed after
    ``BEFORE_SECONDS``; until ``AFTER_SECONDS`` past its replica's promotion."""
    apps = apps_by_master(cluster)
    victim = min(apps)
    replica = replica_of(cluster, victim)
    timeline = Timeline()
    started = time.monotonic()
    n = 0
    while True:
        now = time.monotonic() - started
        if not timeline.killed and now >= BEFORE_SECONDS:
            cluster.kill(victim)
            timeline.killed = time.monotonic() - started
        elif timeline.killed and timeline.promoted is None and promoted(cluster, replica):
            timeline.promoted = time.monotonic() - started
        if timeline.promoted is not None and now > timeline.promoted + AFTER_SECONDS:
            break
        assert now < GIVE_UP_SECONDS, "the replica was not promoted"
        for port, app in apps.items():
            n += 1
            user = f"u{n}"
            at = time.monotonic() - started
            try:
                outcome = "ok" if added(decide(app, user), user) else "not added"
            except StoreUnavailable:
                outcome = "unavailable"
            except Exception as exc:  # recorded: the test says which
                outcome = f"{type(exc).__name__}: {exc}"
            timeline.decisions.append(Decision(at, port, app, user, outcome))
    return timeline, victim, apps


def added(result: BatchResult, user: str) -> bool:
    return result.item(user).outcome is Outcome.ADDED


def check(
    cluster: LocalCluster,
    timeline: Timeline,
    victim: int,
    apps: dict[int, str],
    figures: Recorder,
) -> None:
    assert timeline.promoted is not None
    for port in apps:
        decisions = timeline.of(port)
        failed = [d for d in decisions if d.outcome != "ok"]
        if port != victim:
            assert failed == [], f"a healthy shard failed: {failed[:3]}"
            continue
        assert {d.outcome for d in failed} == {"unavailable"}
        assert all(d.at >= timeline.killed for d in failed)
        assert failed[-1].at <= timeline.promoted + RECOVERY_SECONDS, (failed[-1], timeline)
        assert decisions[-1].outcome == "ok"
        figures.record("cluster", "decisions on the killed shard refused as outages", len(failed))
    # every acknowledged registration is there (a refused one may have run: its reply was lost)
    live = next(iter(cluster.processes))
    reader = redis.cluster.RedisCluster(host="127.0.0.1", port=live, decode_responses=True)
    for app in apps.values():
        stored = reader.smembers(LAYOUT.app(app).users)
        acknowledged = {d.user for d in timeline.decisions if d.app == app and d.outcome == "ok"}
        tried = {d.user for d in timeline.decisions if d.app == app}
        assert acknowledged <= stored and stored <= tried
    reader.close()
    healthy = sum(len(timeline.of(port)) for port in apps if port != victim)
    figures.record("cluster", "decisions on healthy shards during a failover", healthy)
    figures.record("cluster", "masters killed with SIGKILL", 1)


def settings(cluster: LocalCluster) -> Settings:
    return Settings(redis_url=cluster.url, cache_seconds=0, marker_check_seconds=0)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_killed_master_fails_only_its_own_shard_until_its_replica_serves(
    cluster: LocalCluster, figures: Recorder, mode: str
) -> None:
    engines = Engines(mode)
    engine = engines.add(
        lambda: Limiter.from_settings(settings(cluster)),
        lambda: AsyncLimiter.from_settings(settings(cluster)),
    )
    try:
        for app in apps_by_master(cluster).values():  # every registration a real addition
            engine.set_override(app, "users", None)
        timeline, victim, apps = run_failover(
            cluster, lambda app, user: engine.register_users(app, [user])
        )
    finally:
        engines.close()
    check(cluster, timeline, victim, apps, figures)
