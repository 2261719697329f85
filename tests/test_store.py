"""Key layout, id validation, round trips per operation, plan cache and outage policies."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import pytest
import redis

from limiter import (
    InvalidRequest,
    Limiter,
    Outcome,
    Settings,
    StoreUnavailable,
    SyncStore,
)
from limiter.store import Request
from limiter.store.keys import KeyLayout
from limiter.store.redis import packed_commands
from tests.conftest import APP, Backend, Enroll, all_keys


class CountingStore(SyncStore):
    """A real store that also counts its round trips (one per executed request)."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(client)
        self.round_trips = 0

    def execute(self, request: Request) -> object:
        self.round_trips += 1
        return super().execute(request)


def test_every_key_carries_the_prefix_and_the_app_hash_tag(make_engine, client: Any):
    engine = make_engine(key_prefix="chat.prod")
    engine.register_users(APP, ["a", "b"])
    engine.add_friends(APP, "a", ["b"])
    engine.create_group(APP, "g", "AVChatRoom", "a", ["b"])
    engine.set_override(APP, "friends", 5, user="a")
    engine.record_login(APP, "a")
    keys = all_keys(client)
    # plan, users, groups, av_rooms, audit, marker (limiter/marker.py), meter:<month>,
    # dau:<day>; per entity: friends and friended_by of a and b, members of g, joined_free
    # of a and b (AV rooms do not count toward groups_per_user)
    assert f"chat.prod:{{{APP}}}:marker" in keys
    assert f"chat.prod:{{{APP}}}:friends:0:a" in keys
    assert len(keys) == 15
    assert all(key.startswith(f"chat.prod:{{{APP}}}:") for key in keys)


def test_key_layout_rejects_a_prefix_or_app_id_that_would_break_the_tag():
    with pytest.raises(InvalidRequest) as caught:
        KeyLayout("a{b}")
    assert caught.value.field == "key_prefix"
    for bad in ["", "1{2}", "a:b", "x" * 65, "a b", "a*"]:
        with pytest.raises(InvalidRequest) as caught:
            KeyLayout().app(bad)
        assert caught.value.field == "app"


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        ("", "bytes"),
        ("x" * 33, "bytes"),
        ("é" * 17, "bytes"),
        ("a\nb", "control"),
        ("a\0", "control"),
    ],
)
def test_bad_user_ids_are_refused_before_anything_changes(engine, user, reason):
    with pytest.raises(InvalidRequest) as caught:
        engine.register_users(APP, ["fine", user])
    assert caught.value.field == "users" and reason in str(caught.value)
    assert engine.usage(APP).users == 0


def test_group_ids_up_to_48_bytes(engine, enroll: Enroll):
    enroll(APP, "owner")
    engine.create_group(APP, "g" * 48, "Public", "owner")
    with pytest.raises(InvalidRequest) as caught:
        engine.create_group(APP, "g" * 49, "Public", "owner")
    assert caught.value.field == "group"


def test_ids_with_key_characters_stay_inside_their_own_app_and_entity(
    engine, client: Any, enroll: Enroll
):
    other = "1400000002"
    enroll(other, "a", "b")
    engine.add_friends(other, "a", ["b"])
    engine.create_group(other, "g", "Public", "a")
    tricky = ["a}", "{a", "a:b", "*", f"{{{other}}}", "a\\", "[a", "(a"]
    engine.register_users(APP, tricky)
    engine.add_friends(APP, "*", tricky[:3])
    engine.create_group(APP, "g:*", "Public", "{a", ["a}", "*"])
    engine.delete_users(APP, ["*"])
    engine.destroy_group(APP, "g:*")
    assert engine.user_usage(other, "a").friends == 1
    assert engine.group_usage(other, "g").members == 1
    assert engine.user_usage(APP, "a").friends == 0
    assert engine.user_usage(APP, "a:b").friends == 0
    assert engine.usage(APP).users == len(tricky) - 1
    keys = all_keys(client)
    assert {key.split("}")[0] for key in keys} == {f"limiter:{{{APP}", f"limiter:{{{other}"}


def test_each_operation_is_one_round_trip_once_the_plan_is_cached(backend: Backend, clock):
    store = CountingStore(backend.sync_client())
    engine = Limiter(store, settings=Settings(cache_seconds=60), clock=clock)
    engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 20))
    engine.register_users(APP, ["warm"])  # the plan is now cached
    operations = {
        "register_users": lambda: engine.register_users(APP, ["a", "b", "c", "d"]),
        "add_friends": lambda: engine.add_friends(APP, "a", ["b"]),
        "remove_friends": lambda: engine.remove_friends(APP, "a", ["b"]),
        "create_group": lambda: engine.create_group(APP, "g", "Public", "a", ["b"]),
        "add_members": lambda: engine.add_members(APP, "g", ["c", "d"]),
        "remove_members": lambda: engine.remove_members(APP, "g", ["c"]),
        "destroy_group": lambda: engine.destroy_group(APP, "g"),
        "delete_users": lambda: engine.delete_users(APP, ["a"]),
        "usage": lambda: engine.usage(APP),
        "record_login": lambda: engine.record_login(APP, "b"),  # an account ("a" was deleted)
        "record_login (again)": lambda: engine.record_login(APP, "b"),
        "record_bandwidth": lambda: engine.record_bandwidth(APP, 3),
        "monthly_usage": lambda: engine.monthly_usage(APP, "2026-11"),
        "audit": lambda: engine.audit(APP),
    }
    answers = {}
    for name, operation in operations.items():
        before = store.round_trips
        answers[name] = operation()
        assert store.round_trips - before == 1, name
    # each took its whole path (accounts first: every id named is an account)
    assert answers["add_friends"].added == ("b",)
    assert answers["add_members"].added == ("c", "d")
    first, again = answers["record_login"], answers["record_login (again)"]
    assert (first.registered, first.counted, again.counted) == (True, True, False)
    before = store.round_trips
    engine.history_cutoff(APP)
    assert store.round_trips == before  # the cached plan answers it
    clock.advance(timedelta(seconds=61))
    before = store.round_trips
    engine.register_users(APP, ["e"])
    assert store.round_trips - before == 2  # the stale plan is read again, then the script


@pytest.mark.redis
def test_the_server_sees_one_evalsha_per_decision(clock):
    from tests.conftest import REDIS_URL, real_redis_or_skip

    server = real_redis_or_skip()
    engine = Limiter.from_settings(Settings(redis_url=REDIS_URL, cache_seconds=60), clock=clock)
    for app in ("warm-up", APP):  # the first app loads the scripts into the server's cache
        engine.register_users(app, ["warm", "a", "b", "c"])  # accounts first
        server.config_resetstat()
        engine.add_friends(app, "a", ["b", "c"])
        engine.create_group(app, "g", "Public", "a", ["b"])
        engine.add_members(app, "g", ["c"])
    stats = server.info("commandstats")
    calls = {name: stat["calls"] for name, stat in stats.items()}
    assert calls.get("cmdstat_evalsha") == 3
    assert "cmdstat_hgetall" not in calls
    engine.close()


def test_plan_changes_reach_another_worker_within_the_staleness_bound(make_engine, clock):
    writer = make_engine(cache_seconds=1)
    reader = make_engine(cache_seconds=1)
    assert reader.limits(APP).app["friends"].value == 20
    writer.set_override(APP, "friends", 7)
    assert writer.limits(APP).app["friends"].value == 7  # the writer forgets its own copy
    assert reader.limits(APP).app["friends"].value == 20  # the reader's copy is still fresh
    clock.advance(timedelta(seconds=1))
    assert reader.limits(APP).app["friends"].value == 7


def _dead_store_settings(**kwargs: object) -> Settings:
    return Settings(redis_url="redis://127.0.0.1:1/0", **kwargs)


def test_outage_closed_raises_the_typed_error(clock):
    engine = Limiter.from_settings(_dead_store_settings(), clock=clock)
    with pytest.raises(StoreUnavailable):
        engine.add_members(APP, "g", ["a"])
    with pytest.raises(StoreUnavailable):
        engine.usage(APP)


def test_outage_open_allows_and_logs(clock, caplog):
    engine = Limiter.from_settings(_dead_store_settings(outage="open"), clock=clock)
    with caplog.at_level(logging.WARNING, logger="limiter"):
        result = engine.add_friends(APP, "a", ["b"])
        created = engine.create_group(APP, "g", "Public", "a", ["b"])
    assert result.degraded and result.items[0].outcome is Outcome.ADDED
    assert created.degraded and created.members == 2
    assert "outage policy open" in caplog.text


def test_replies_that_mean_not_now_are_outages_and_others_are_not():
    from limiter.store.redis import _outage

    not_now = [
        redis.exceptions.ReadOnlyError("READONLY You can't write against a read only replica."),
        redis.exceptions.BusyLoadingError("LOADING Redis is loading the dataset in memory"),
        redis.exceptions.OutOfMemoryError("OOM command not allowed"),
        redis.ResponseError("BUSY Redis is busy running a script."),
        redis.ResponseError(
            "Command # 1 (HGETALL limiter:{1}:plan) of pipeline caused error: BUSY Redis is busy"
        ),
        redis.ConnectionError("Connection refused"),
    ]
    assert all(isinstance(_outage(exc), StoreUnavailable) for exc in not_now)
    assert _outage(redis.ResponseError("ERR wrong number of arguments")) is None


def test_the_plan_cache_stays_bounded(engine, monkeypatch):
    monkeypatch.setattr("limiter.ops.context.PLAN_CACHE_APPS", 3)
    for n in range(6):
        engine.limits(f"app{n}")
    assert len(engine.context._plans) == 3


@pytest.mark.parametrize("encoding", ["utf-8", "UTF8", "latin-1"])
def test_loads_are_packed_as_redis_py_packs_them(encoding: str) -> None:
    """A reconcile's loads are packed by hiredis, not by redis-py: the bytes are redis-py's
    own for the client's encoding (text, numbers, an id outside ASCII)."""
    commands = [("SADD", "limiter:{1}:users", "é-user", 7), ("EVAL", "return 1", 0)]
    connection = redis.Connection(encoding=encoding)
    expected = b"".join(connection.pack_commands(commands))
    assert b"".join(packed_commands(commands, {"encoding": encoding})) == expected
    if encoding == "latin-1":
        assert "é".encode("latin-1") in expected
