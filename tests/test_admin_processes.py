"""Two processes, one Redis: a limit changed through the admin API of a real server reaches
another process's engine within its staleness bound (``cache_seconds``)."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bench.servers import free_port, start
from limiter import BatchResult, Limiter, Settings
from tests.admin_server import TOKEN
from tests.conftest import APP, REDIS_URL, real_redis_or_skip

CACHE_SECONDS = 1.0
# Scheduling and round trips on a loaded test machine, on top of the cache's lifetime.
MARGIN_SECONDS = 1.0
POLL_SECONDS = 0.01
ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[httpx.Client]:
    """An HTTP client of a uvicorn server process serving the admin API on the test Redis."""
    client = real_redis_or_skip()
    port = free_port()
    server = start(
        [
            sys.executable,
            *("-m", "uvicorn", "--factory", "tests.admin_server:factory"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        ],
        base_url=f"http://127.0.0.1:{port}",
        log_path=tmp_path / "server.log",
        env={**os.environ, "LIMITER_TEST_REDIS_URL": REDIS_URL},
        ready_path=f"/admin/apps/{APP}",
    )
    http = httpx.Client(
        base_url=f"{server.base_url}/admin", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    try:
        assert http.get(f"/apps/{APP}").status_code == 200  # up, and answering rightly
        yield http
    finally:
        http.close()
        server.stop()
        client.flushdb()
        client.close()


@pytest.fixture
def im() -> Iterator[Limiter]:
    """The IM backend's engine in this process: it decides from a plan at most 1 s old."""
    engine = Limiter.from_settings(Settings(redis_url=REDIS_URL, cache_seconds=CACHE_SECONDS))
    yield engine
    engine.close()


def seconds_until(condition: Callable[[], bool]) -> float:
    """How long ``condition`` took to hold, polled; fails past the staleness bound."""
    started = time.monotonic()
    while not condition():
        waited = time.monotonic() - started
        assert waited < CACHE_SECONDS + MARGIN_SECONDS, f"still stale after {waited:.3f} s"
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started


def refused_code(result: BatchResult) -> int | None:
    refusal = result.refused[0].refusal if result.refused else None
    return None if refusal is None else refusal.code


@pytest.mark.redis
def test_a_limit_changed_over_http_reaches_another_process_within_the_cache_bound(
    admin: httpx.Client, im: Limiter
):
    assert admin.put(f"/apps/{APP}/users/alice/overrides/friends", json={"value": 1}).is_success
    im.register_users(APP, ["alice", "bob", "carol", "dave"])  # reads and caches the plan
    assert im.add_friends(APP, "alice", ["bob"]).added == ("bob",)
    assert refused_code(im.add_friends(APP, "alice", ["carol"])) == 30010

    # Raised on the server: this process decides from its old copy until that expires.
    assert admin.put(f"/apps/{APP}/users/alice/overrides/friends", json={"value": 2}).is_success
    raised = seconds_until(lambda: im.add_friends(APP, "alice", ["carol"]).added == ("carol",))

    # Lowered on the server: bob holds 2 friends and keeps them; once seen, a third is refused.
    assert im.add_friends(APP, "bob", ["carol"]).added == ("carol",)
    assert admin.put(f"/apps/{APP}/users/bob/overrides/friends", json={"value": 2}).is_success
    lowered = seconds_until(lambda: im.limits(APP).for_user("bob", "friends").value == 2)
    assert refused_code(im.add_friends(APP, "bob", ["dave"])) == 30010
    assert im.user_usage(APP, "bob").friends == 2

    log.info("changes seen after %.3f s (raised) and %.3f s (lowered)", raised, lowered)
