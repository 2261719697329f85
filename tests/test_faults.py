"""Faults on a real ``redis-server`` the test owns (``tests/redis_proc.py``): stopped and
restarted by pid mid-run, with and without its append-only file, crashed with SIGKILL, and
flushed. The engines (sync and async), the library's FastAPI handler and the example app must
fail typed (503) without a partial change, go through degraded under ``open``, work again after
the restart without being rebuilt, and report a flushed data set, which reconcile repairs.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import SecretStr

from examples.im_backend import reconcile
from examples.im_backend.db import Database
from limiter import (
    AccountRecord,
    AsyncLimiter,
    FriendRecord,
    GroupRecord,
    Limiter,
    Outcome,
    Settings,
    StoreUnavailable,
    SyncStore,
    cli,
)
from limiter.fastapi import PROBLEM_JSON, get_limiter, install_exception_handler
from limiter.marker import DataWatch
from limiter.metrics import render
from limiter.reconcile import Record
from limiter.store.keys import KeyLayout
from limiter.testing import ManualClock
from tests.conftest import APP, AsyncAsSync, EngineFactory, Engines, rebuild_keys
from tests.example_support import (
    ADD_MEMBERS,
    AUTH,
    STORE_DOWN,
    TOKEN,
    members,
    ok,
    serving,
)
from tests.figures import Recorder
from tests.redis_proc import RedisProcess, redis_process
from tests.test_reconcile import assert_counts_match, snapshot

# The source of truth the tests build through the engine, as reconcile records.
SOURCE: tuple[Record, ...] = (
    *(AccountRecord(user) for user in "abcde"),
    FriendRecord("a", "b", both_ways=True),
    FriendRecord("a", "c", both_ways=True),
    GroupRecord("g", "Public", ("b", "c"), owner="a"),
    GroupRecord("room", "AVChatRoom", ("d",), owner="e"),
)

Connect = Callable[..., Any]


def build(engine: Any) -> None:
    """Make through the engine what :data:`SOURCE` says."""
    engine.register_users(APP, list("abcde"))
    engine.add_friends(APP, "a", ["b", "c"])
    engine.create_group(APP, "g", "Public", "a", ["b", "c"])
    engine.create_group(APP, "room", "AVChatRoom", "e", ["d"])


# Every kind of operation, each tried while the server is down.
OPERATIONS: dict[str, Callable[[Any], Any]] = {
    "register_users": lambda engine: engine.register_users(APP, ["f"]),
    "add_friends": lambda engine: engine.add_friends(APP, "d", ["e"]),
    "create_group": lambda engine: engine.create_group(APP, "h", "Public", "d", ["e"]),
    "add_members": lambda engine: engine.add_members(APP, "g", ["d"]),
    "remove_members": lambda engine: engine.remove_members(APP, "g", ["b"]),
    "destroy_group": lambda engine: engine.destroy_group(APP, "g"),
    "record_login": lambda engine: engine.record_login(APP, "a"),
    "usage": lambda engine: engine.usage(APP),
}


def client_of(server: RedisProcess) -> redis.Redis:
    return redis.Redis.from_url(server.url, decode_responses=True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A test-owned server keeping nothing on disk: a restart comes back empty."""
    with redis_process(tmp_path) as running:
        yield running


@pytest.fixture
def persistent(tmp_path: Path) -> Iterator[RedisProcess]:
    """A test-owned server with the compose file's durability: AOF, fsync every second."""
    with redis_process(tmp_path, persistent=True) as running:
        yield running


@pytest.fixture(params=["sync", "async"])
def connect(request: pytest.FixtureRequest, clock: ManualClock) -> Iterator[Connect]:
    """Builds engines (the sync facade, or the async engine driven synchronously) on a URL,
    as an application does (``from_settings``), and closes them at the end."""
    engines = Engines(request.param)

    def connect(url: str, **settings: Any) -> Any:
        config = Settings(redis_url=url, cache_seconds=0, **settings)
        return engines.add(
            lambda: Limiter.from_settings(config, clock=clock),
            lambda: AsyncLimiter.from_settings(config, clock=clock),
        )

    yield connect
    engines.close()


def unwrapped(engine: Any) -> Limiter | AsyncLimiter:
    """The engine itself, not the test's synchronous driver of an async one."""
    found: Limiter | AsyncLimiter = engine.engine if isinstance(engine, AsyncAsSync) else engine
    return found


def try_during_outage(engine: Any, figures: Recorder) -> None:
    """Every operation raises the typed outage error, after one failed round trip (the
    marker check that is due after an outage stands in for the operation's own)."""
    errors = unwrapped(engine).stats.store_errors
    failed = errors.total()
    for operation in OPERATIONS.values():
        with pytest.raises(StoreUnavailable):
            operation(engine)
    assert errors.total() - failed == len(OPERATIONS)
    figures.record("faults", "requests made while the server was down", len(OPERATIONS))


def record_server(figures: Recorder, server: RedisProcess) -> None:
    figures.record("faults", "test-owned redis-server starts (first and restarts)", server.starts)
    figures.record("faults", "test-owned redis-server stops (SIGTERM or SIGKILL)", server.stops)


# -- closed: typed error, nothing half done, the same engine works after the restart ---------------


def test_closed_a_stopped_server_raises_and_the_same_engine_works_after_the_restart(
    persistent: RedisProcess, connect: Connect, figures: Recorder
) -> None:
    engine = connect(persistent.url, outage="closed")
    build(engine)
    data = client_of(persistent)
    before = snapshot(data)
    marker = engine.data_status().marker
    assert marker is not None

    persistent.stop(signal.SIGTERM)  # a clean stop writes the append-only file
    try_during_outage(engine, figures)
    persistent.start()  # same port and files: the data is back, the script cache is empty

    assert snapshot(data) == before  # nothing of the refused calls half happened
    assert engine.add_members(APP, "g", ["d"]).items[0].outcome is Outcome.ADDED
    assert engine.group_usage(APP, "g").members == 4
    # EVALSHA met NOSCRIPT and the store sent the script's source (EVAL), on the same engine;
    # never SCRIPT LOAD, which a cluster client sends to every node
    stats = data.info("commandstats")
    assert stats["cmdstat_evalsha"]["failed_calls"] >= 1
    assert stats["cmdstat_eval"]["calls"] >= 1
    assert "cmdstat_script|load" not in stats
    status = engine.data_status()
    assert (status.marker, status.resets) == (marker, 0)  # checked after the outage: same data
    record_server(figures, persistent)
    figures.record("faults", "operations checked unchanged after an outage", len(OPERATIONS))


def test_closed_an_empty_restart_is_detected_and_reconcile_restores_the_counts(
    server: RedisProcess,
    connect: Connect,
    clock: ManualClock,
    figures: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = connect(server.url)
    build(engine)
    first = engine.data_status()

    server.stop(signal.SIGTERM)
    try_during_outage(engine, figures)
    server.start()  # no persistence: the data set and the script cache are gone
    with caplog.at_level(logging.ERROR, logger="limiter"):
        assert engine.usage(APP).users == 0  # the first request after the outage checks

    status = engine.data_status()
    assert status.resets == 1 and status.last_reset_at == clock.now()
    assert status.marker not in (None, first.marker)
    assert "flushed or replaced" in caplog.text and "reconcile" in caplog.text.lower()
    assert "overrides" in caplog.text and "metering" in caplog.text
    assert b"limiter_data_resets_total 1.0" in render(unwrapped(engine))

    report = engine.reconcile(APP, SOURCE)
    assert report.accounts.added == 5
    assert_counts_match(engine, SOURCE)
    assert engine.register_users(APP, ["f"]).items[0].outcome is Outcome.ADDED  # scripts reload
    record_server(figures, server)
    figures.record("faults", "data sets lost on restart and detected by the marker", 1)
    figures.record("faults", "reconciles that restored the counts exactly", 1)


def test_a_reconcile_cut_by_an_outage_raises_and_leaves_the_live_counts_as_they_were(
    persistent: RedisProcess,
    connect: Connect,
    figures: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server stops while loads are in flight (the sync engine sends the next chunk from a
    thread while it builds the one after): the reconcile raises the outage, nothing is switched
    in, and after the restart a reconcile goes through."""
    monkeypatch.setattr("limiter.reconcile.rebuild.LOAD_ENTRIES", 3)  # a load every few records
    engine = connect(persistent.url)
    build(engine)
    data = client_of(persistent)
    live = snapshot(data)

    def source() -> Iterator[Record]:
        for number, record in enumerate(SOURCE * 4):
            if number == len(SOURCE) * 2:
                persistent.stop(signal.SIGTERM)
            yield record

    with pytest.raises(StoreUnavailable):
        engine.reconcile(APP, source())
    persistent.start()

    # the rebuild's generation stays (listed in the app's rebuilds, to be deleted by a later
    # reconcile): the live state is as it was
    left = set(rebuild_keys(data, APP))
    assert left
    after = {key: value for key, value in snapshot(data).items() if key not in left}
    assert after == live
    engine.reconcile(APP, SOURCE)
    assert_counts_match(engine, SOURCE)
    record_server(figures, persistent)
    figures.record("faults", "reconciles cut by an outage, nothing switched in", 1)


# -- open: actions go through, degraded and logged; reconcile makes the counts exact --------------


def test_open_a_stopped_server_lets_actions_through_degraded_and_logs_a_warning(
    persistent: RedisProcess,
    connect: Connect,
    figures: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = connect(persistent.url, outage="open")
    build(engine)
    data = client_of(persistent)
    before = snapshot(data)

    persistent.stop(signal.SIGTERM)
    with caplog.at_level(logging.WARNING, logger="limiter"):
        answers = [
            engine.register_users(APP, ["f"]),
            engine.add_friends(APP, "d", ["e"]),
            engine.create_group(APP, "h", "Public", "d", ["e"]),
            engine.add_members(APP, "g", ["d"]),
        ]
    assert all(answer.degraded for answer in answers)
    assert all(item.outcome is Outcome.ADDED for answer in answers[::3] for item in answer.items)
    assert caplog.text.count("outage policy open") == len(answers)
    figures.record("faults", "requests made while the server was down", len(answers))
    persistent.start()

    assert snapshot(data) == before  # a degraded answer wrote nothing
    # The application did what the degraded answers allowed; its records repair the counts.
    source = (
        *SOURCE,
        AccountRecord("f"),
        FriendRecord("d", "e", both_ways=True),
        GroupRecord("h", "Public", ("e",), owner="d"),
        GroupRecord("g", "Public", ("d",)),  # a second part of g: d joined it
    )
    engine.reconcile(APP, source)
    assert_counts_match(engine, source)
    record_server(figures, persistent)


# -- HTTP: the library's generic handler, the example app ------------------------------------------


def test_the_generic_handler_answers_503_problem_json_and_the_app_recovers(
    persistent: RedisProcess, clock: ManualClock, figures: Recorder
) -> None:
    engine = AsyncLimiter.from_settings(
        Settings(redis_url=persistent.url, cache_seconds=0), clock=clock
    )
    app = FastAPI()
    app.state.limiter = engine
    install_exception_handler(app)

    @app.post("/groups/{group}/members/{user}")
    async def join(group: str, user: str, request: Request) -> dict[str, str]:
        result = await get_limiter(request).add_members(APP, group, [user])
        return {"outcome": result.items[0].outcome.value}

    with TestClient(app) as http:
        assert http.portal is not None
        http.portal.call(engine.register_users, APP, ["a", "b", "c"])
        http.portal.call(engine.create_group, APP, "g", "Public", "a")
        persistent.stop(signal.SIGTERM)
        answer = http.post("/groups/g/members/b")
        assert answer.status_code == 503
        assert answer.headers["content-type"] == PROBLEM_JSON
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["title"] == "Limit store unavailable"
        figures.record("faults", "requests made while the server was down", 1)
        persistent.start()
        assert http.portal.call(engine.group_usage, APP, "g").members == 1  # b was not added
        answer = http.post("/groups/g/members/b")
        assert (answer.status_code, answer.json()) == (200, {"outcome": "added"})
        http.portal.call(engine.aclose)
    record_server(figures, persistent)


def example_settings(url: str, **settings: Any) -> Settings:
    admin_tokens = {"ops": SecretStr(TOKEN)}
    return Settings(redis_url=url, cache_seconds=0, admin_tokens=admin_tokens, **settings)


def test_the_example_answers_503_im_shaped_changes_nothing_and_recovers(
    persistent: RedisProcess, clock: ManualClock, tmp_path: Path, figures: Recorder
) -> None:
    engine = AsyncLimiter.from_settings(example_settings(persistent.url), clock=clock)
    with serving(engine, tmp_path / "im.sqlite3", clock) as im:
        im.import_users("a", "b", "c", "d")
        group = im.create_group("a", "b")
        before = im.snapshot(("a", "b", "c", "d"), (group,))
        persistent.stop(signal.SIGTERM)

        add = {"GroupId": group, "MemberList": members("c", "d")}
        answer = im.post(ADD_MEMBERS, add)
        assert (answer.status_code, answer.headers["retry-after"]) == (503, "1")
        assert answer.json() == {
            "ActionStatus": "FAIL",
            "ErrorCode": 10002,
            "ErrorInfo": STORE_DOWN,
        }
        health = im.http.get("/admin/health", headers=AUTH)
        assert (health.status_code, health.json()["store"]) == (503, "unavailable")
        assert health.json()["data"]["marker"] is not None  # what it knew before the outage
        figures.record("faults", "requests made while the server was down", 2)
        persistent.start()

        assert im.snapshot(("a", "b", "c", "d"), (group,)) == before  # SQLite and counts
        answer = im.post(ADD_MEMBERS, add)
        expected = ok(MemberList=[{"Member_Account": u, "Result": 1} for u in ("c", "d")])
        assert (answer.status_code, answer.json()) == (200, expected)
        health = im.http.get("/admin/health", headers=AUTH)
        assert health.status_code == 200
        assert (health.json()["store"], health.json()["data"]["resets"]) == ("reachable", 0)
    record_server(figures, persistent)


# -- a flushed data set: detected, reported everywhere, repaired by reconcile --------------------


def test_a_flush_is_detected_reported_and_repaired_by_the_examples_reconcile(
    server: RedisProcess,
    clock: ManualClock,
    tmp_path: Path,
    figures: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db_path = tmp_path / "im.sqlite3"
    settings = example_settings(server.url, marker_check_seconds=0)
    engine = AsyncLimiter.from_settings(settings, clock=clock)
    with serving(engine, db_path, clock) as im:
        im.import_users("a", "b", "c", "d", "e")
        im.befriend("a", "b", "c")
        group = im.create_group("a", "b", "c")
        room = im.create_group("e", "d", type="AVChatRoom")
        client_of(server).flushdb()

        with caplog.at_level(logging.ERROR, logger="limiter"):
            im.import_users("f")  # traffic goes on; the check before it sees the flush
        assert "flushed or replaced" in caplog.text
        health = im.http.get("/admin/health", headers=AUTH).json()
        assert health["store"] == "reachable"
        assert health["data"]["resets"] == 1
        assert health["data"]["last_reset_at"] == clock.now().isoformat()
        assert "limiter_data_resets_total 1.0" in im.http.get("/metrics").text
        assert im.usage().users == 1  # only f: the counts restarted from zero

        repair = Limiter(SyncStore(client_of(server)), settings=settings, clock=clock)
        assert reconcile.main([APP, "--db", str(db_path)], limiter=repair) == 0
        with closing(Database(str(db_path), read_only=True)) as db:
            assert_counts_match(repair, list(reconcile.records(db, APP)))
        assert im.usage().users == 6 and im.group(group).members == 3
        assert im.group(room).members == 2
        repair.close()
    figures.record("faults", "FLUSHDB on the test-owned server", 1)
    figures.record("faults", "flushed data sets detected by the marker and reported", 1)
    figures.record("faults", "reconciles that restored the counts exactly", 1)


def test_a_flush_is_seen_by_the_periodic_check_once_per_engine(
    make_engine: EngineFactory, client: Any, clock: ManualClock, figures: Recorder
) -> None:
    seconds = [0.0]
    engines = [make_engine(), make_engine()]
    for engine in engines:  # the same check interval, on a monotonic clock the test moves
        watch = DataWatch(KeyLayout(), clock, 30, monotonic=lambda: seconds[0])
        unwrapped(engine).data = watch
        engine.register_users(APP, ["a"])
    assert engines[0].data_status().marker == engines[1].data_status().marker

    client.flushdb()
    seconds[0] = 29.9
    engines[0].register_users(APP, ["b"])  # not due yet: no extra round trip, nothing seen
    assert engines[0].data_status().resets == 0
    seconds[0] = 30.0
    for engine in engines:
        engine.usage(APP)
    first, second = (engine.data_status() for engine in engines)
    assert (first.resets, second.resets) == (1, 1)  # the second found the first one's new marker
    assert first.marker == second.marker
    engines[0].usage(APP)
    assert engines[0].data_status().resets == 1  # reported once
    figures.record("faults", "flushes detected by the periodic marker check", 2)


# -- durability: AOF everysec, a crash, and the repair -------------------------------------------


def crash(server: RedisProcess, engine: Any) -> None:
    """SIGKILL the server, let the engine meet the outage once, restart it."""
    server.stop(signal.SIGKILL)
    with pytest.raises(StoreUnavailable):
        engine.usage(APP)
    server.start()


def test_a_crash_keeps_what_was_fsynced_and_reconcile_repairs_what_it_lost(
    persistent: RedisProcess, connect: Connect, figures: Recorder
) -> None:
    engine = connect(persistent.url)
    build(engine)
    data = client_of(persistent)
    time.sleep(1.5)  # real time: beyond `appendfsync everysec`, the writes are on disk
    before = snapshot(data)
    crash(persistent, engine)
    assert snapshot(data) == before
    assert engine.check_data().resets == 0  # the marker was on disk too

    burst = [f"u{i:02d}" for i in range(90)]
    for user in burst:  # the last of these may not reach the disk before the crash
        engine.register_users(APP, [user])
    crash(persistent, engine)
    kept = engine.usage(APP).users - 5
    figures.record("faults", "registrations lost by SIGKILL right after writing (AOF)", 90 - kept)

    source = (*SOURCE, *(AccountRecord(user) for user in burst))
    engine.reconcile(APP, source)
    assert_counts_match(engine, source)
    record_server(figures, persistent)
    figures.record("faults", "crashes (SIGKILL) with AOF everysec, then reconcile", 2)


def test_the_first_request_after_a_restart_nobody_saw_goes_through(
    persistent: RedisProcess, connect: Connect
) -> None:
    """The server restarts between two requests: the engine's pooled connection is dead, and
    the request must not fail for it (nothing was sent on it)."""
    engine = connect(persistent.url)
    build(engine)
    persistent.restart(signal.SIGTERM)
    assert engine.register_users(APP, ["f"]).items[0].outcome is Outcome.ADDED


def test_the_console_health_command_says_since_when_the_data_set_exists(
    server: RedisProcess, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = Limiter.from_settings(Settings(redis_url=server.url), clock=clock)
    assert cli.main(["health", "--json"], limiter=engine) == 0
    data = json.loads(capsys.readouterr().out)["data"]
    assert data["since"] == clock.now().isoformat() and data["resets"] == 0
    assert client_of(server).get("limiter:marker") == f"{data['marker']} {data['since']}"
    server.stop(signal.SIGTERM)
    assert cli.main(["health"], limiter=engine) == 1
    assert "Redis unavailable" in capsys.readouterr().err
    engine.close()
