"""``limiter migrate``: an app's relations written by limiter 0.1 (app-wide sorted sets) moved
into the per-entity layout, streamed, resumable, and safe to run twice.

``tests/data/old_layout.json`` holds every key of one app as the 0.1 release left it (written
by that release's own engine: registrations, friends both and single way, groups of each kind,
a destroyed group, a removed member, a deleted account, a friend who is not an account) and
the counts that release reported for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from limiter import Limiter, Settings, SyncStore, cli
from limiter.errors import InvalidRequest
from limiter.store import scripts
from limiter.testing import ManualClock
from tests.conftest import keys_of
from tests.invariants import check_app

OLD = json.loads((Path(__file__).parent / "data" / "old_layout.json").read_text())
APP: str = OLD["app"]
OLD_ENTRIES = sum(len(k["value"]) for k in OLD["keys"] if k["type"] == "zset")


def write_old_layout(client: Any) -> None:
    """Every key of the 0.1 app, as that release stored it."""
    pipe = client.pipeline(transaction=False)
    for item in OLD["keys"]:
        key, kind, value = item["key"], item["type"], item["value"]
        if kind == "zset":
            pipe.zadd(key, {member: score for member, score in value})
        elif kind == "set":
            pipe.sadd(key, *value)
        elif kind == "hash":
            pipe.hset(key, mapping=value)
        elif kind == "list":
            pipe.rpush(key, *value)
        else:
            pipe.set(key, value)
    pipe.execute()


def assert_counts_as_released(engine: Any) -> None:
    for user, (friends, groups) in OLD["counts"]["users"].items():
        found = engine.user_usage(APP, user)
        assert (found.friends, found.groups) == (friends, groups), user
    for group, members in OLD["counts"]["groups"].items():
        assert engine.group_usage(APP, group).members == members, group
    usage = engine.usage(APP)
    assert [usage.users, usage.groups, usage.av_chatrooms] == OLD["counts"]["usage"]


def test_an_app_of_the_old_layout_migrates_and_counts_as_before(engine: Any, client: Any) -> None:
    write_old_layout(client)
    assert OLD_ENTRIES > 300
    assert engine.user_usage(APP, "u000").friends == 0  # not migrated: not seen
    migrated = engine.migrate(APP)
    assert migrated.total == OLD_ENTRIES
    assert migrated.moved["friends"] == migrated.moved["friended_by"] > 0
    assert migrated.moved["members"] == migrated.moved["joined"] + migrated.moved["joined_free"]
    assert_counts_as_released(engine)
    keys = keys_of(engine, APP)
    assert not any(client.exists(getattr(keys, name)) for name in migrated.moved)
    assert client.smembers(keys.strays) == {"ghost"}  # a friend who is not an account
    assert check_app(engine, client, APP, one_way_pairs=_one_way()).rules() == {
        "friend_not_registered"
    }
    # the engine decides on the migrated relations
    assert engine.add_friends(APP, "u000", ["u001"]).items[0].outcome.value == "already"
    again = engine.migrate(APP)
    assert again.total == 0
    assert_counts_as_released(engine)


def _one_way() -> set[frozenset[str]]:
    return {frozenset(("u000", "u050")), frozenset(("u000", "u051")), frozenset(("u030", "ghost"))}


def test_a_stopped_migration_resumes_where_it_stopped(
    engine: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_old_layout(client)
    calls = 0
    chunk = scripts.migrate_chunk

    def stopping(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise KeyboardInterrupt  # the operator stops it between two chunks
        return chunk(*args)

    monkeypatch.setattr(scripts, "migrate_chunk", stopping)
    with pytest.raises(KeyboardInterrupt):
        engine.migrate(APP, chunk=25)
    first = 3 * 25
    rest = engine.migrate(APP, chunk=25)
    assert rest.total == OLD_ENTRIES - first
    assert_counts_as_released(engine)


def test_migrate_checks_its_chunk(engine: Any) -> None:
    for bad in (0, 10_001, True, "5"):
        with pytest.raises(InvalidRequest) as caught:
            engine.migrate(APP, chunk=bad)
        assert caught.value.field == "chunk"


def test_the_console_finds_and_migrates_every_app_of_the_old_layout(
    backend: Any, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    client = backend.sync_client()
    write_old_layout(client)
    engine = Limiter(
        SyncStore(backend.sync_client()), settings=Settings(redis_url="memory://x"), clock=clock
    )
    try:
        assert engine.apps_in_old_layout() == [APP]
        assert cli.main(["migrate", "--all", "--json"], limiter=engine) == 0
        (item,) = json.loads(capsys.readouterr().out)["items"]
        assert (item["app_id"], item["total"]) == (APP, OLD_ENTRIES)
        assert engine.apps_in_old_layout() == []
        assert cli.main(["migrate", APP], limiter=engine) == 0
        assert f"app {APP}: moved 0 relation entries" in capsys.readouterr().out
        assert cli.main(["migrate"], limiter=engine) == 2
        assert "name the apps" in capsys.readouterr().err
    finally:
        engine.close()
        client.close()
