"""The per-entity relation layout (limiter/store/keys.py): one small hash per user and per
group, kept compact by Redis; the index of ids that hold relations (users, strays); the
generations a reconcile writes, switches and deletes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from limiter import (
    AccountRecord,
    FriendRecord,
    GroupRecord,
    Limiter,
    NotRegistered,
    Outcome,
    Settings,
)
from limiter.reconcile import Record
from limiter.reconcile.rebuild import Rebuild
from limiter.store.keys import NAMESPACES
from limiter.testing import ManualClock
from tests.conftest import APP, EngineFactory, all_keys, keys_of, rebuild_keys
from tests.invariants import check_app, relation_key, stored_pairs


def test_small_relations_are_listpacks_and_a_big_group_a_hash_table(
    real_url: str, clock: ManualClock
) -> None:
    """OBJECT ENCODING on a real server: a user's friend list, its reverse index, a small
    group's members and a user's groups are listpacks; only a group past the server's
    hash-max-listpack-entries becomes a hash table."""
    engine = Limiter(Limiter.connect(real_url), settings=Settings(redis_url=real_url), clock=clock)
    client: Any = engine.store.client  # type: ignore[attr-defined]
    try:
        raw = client.config_get("hash-max-listpack-entries")
        if "hash-max-listpack-entries" not in raw:  # a cluster client: per node
            raw = next(iter(raw.values()))
        most = int(raw["hash-max-listpack-entries"])
        crowd = [f"m{i:04d}" for i in range(most + 1)]
        engine.set_edition(APP, "pro", purchased_on=clock.now().date())  # users: unlimited
        engine.register_users(APP, ["a", "b", "c", *crowd])
        engine.set_override(APP, "group_members", None, group="big")
        engine.add_friends(APP, "a", ["b", "c"])
        engine.create_group(APP, "small", "Public", "a", ["b"])
        engine.create_group(APP, "big", "Public", "c")
        for start in range(0, len(crowd), 500):
            assert engine.add_members(APP, "big", crowd[start : start + 500]).added
        keys = keys_of(engine, APP)

        def encoding(name: str, subject: str) -> str:
            return str(client.object("encoding", relation_key(client, keys, name, subject)))

        assert encoding("friends", "a") == "listpack"
        assert encoding("friended_by", "b") == "listpack"
        assert encoding("members", "small") == "listpack"
        assert encoding("joined", "a") == "listpack"
        assert encoding("members", "big") == "hashtable"
        assert engine.group_usage(APP, "big").members == most + 2  # type: ignore[union-attr]
    finally:
        engine.close()


def test_every_id_that_holds_relations_is_indexed(make_engine: EngineFactory, client: Any) -> None:
    """An id that is not registered and is befriended or made a member is a stray; so is an
    account taken off the count while it holds relations (a released reservation); both leave
    the strays when they register, and are gone with their relations when deleted."""
    # Registration not required: only then may an id that is not an account hold relations
    # (accounts first, the default, answers it not_registered instead).
    engine = make_engine(require_registered=False)
    keys = keys_of(engine, APP)
    engine.register_users(APP, ["a", "b"])
    engine.add_friends(APP, "a", ["b", "ghost"])
    engine.create_group(APP, "g", "Public", "a", ["phantom"])
    assert client.smembers(keys.strays) == {"ghost", "phantom"}
    engine.register_users(APP, ["ghost"])
    assert client.smembers(keys.strays) == {"phantom"}
    held = engine.reserve(APP, "register_users", {"users": ["late"]})
    engine.add_friends(APP, "late", ["a"])
    engine.release(held)  # "late" is unregistered, its relations stay
    assert client.smembers(keys.strays) == {"phantom", "late"}
    held = engine.reserve(APP, "register_users", {"users": ["idle"]})
    engine.release(held)  # no relations: not a stray
    assert client.smembers(keys.strays) == {"phantom", "late"}
    assert check_app(engine, client, APP).rules() == {
        "friend_not_registered",
        "member_not_registered",
    }
    engine.delete_users(APP, ["phantom", "ghost", "late"])
    assert client.smembers(keys.strays) == set()
    assert stored_pairs(client, keys, "friends") == {("a", "b"), ("b", "a")}
    assert stored_pairs(client, keys, "members") == {("g", "a")}
    assert check_app(engine, client, APP).violations == ()


def test_accounts_first_relates_only_accounts_and_makes_no_strays(engine: Any, client: Any) -> None:
    """The default (``require_registered``): an id that is not an account is answered
    not_registered and relates to nothing, so no relation puts an id in the strays."""
    keys = keys_of(engine, APP)
    assert engine.settings.require_registered is True
    engine.register_users(APP, ["a", "b"])
    befriended = engine.add_friends(APP, "a", ["b", "ghost"])
    assert [(item.id, item.outcome, item.refusal) for item in befriended.items] == [
        ("b", Outcome.ADDED, None),
        ("ghost", Outcome.NOT_REGISTERED, None),
    ]
    with pytest.raises(NotRegistered) as caught:
        engine.add_friends(APP, "ghost", ["a"])
    assert (caught.value.app, caught.value.accounts) == (APP, ("ghost",))
    with pytest.raises(NotRegistered) as caught:
        engine.create_group(APP, "g", "Public", "a", ["phantom", "b", "ghost"])
    assert caught.value.accounts == ("phantom", "ghost")
    assert engine.group_usage(APP, "g") is None
    engine.create_group(APP, "g", "Public", "a")
    joined = engine.add_members(APP, "g", ["b", "phantom"])
    assert [(item.id, item.outcome) for item in joined.items] == [
        ("b", Outcome.ADDED),
        ("phantom", Outcome.NOT_REGISTERED),
    ]
    assert joined.size == 2
    assert client.smembers(keys.strays) == set()
    assert stored_pairs(client, keys, "friends") == {("a", "b"), ("b", "a")}
    assert stored_pairs(client, keys, "members") == {("g", "a"), ("g", "b")}
    assert [key for key in all_keys(client) if "ghost" in key or "phantom" in key] == []
    assert check_app(engine, client, APP).violations == ()


def _source() -> list[Record]:
    source: list[Record] = [AccountRecord(user) for user in ("a", "b", "c")]
    source += [FriendRecord("a", "b", both_ways=True), GroupRecord("g", "Public", ("b", "c"), "a")]
    return source


def test_a_reconcile_switches_to_a_new_generation_and_deletes_the_old(
    engine: Any, client: Any
) -> None:
    keys = keys_of(engine, APP)
    engine.register_users(APP, ["a", "b", "x"])
    engine.add_friends(APP, "a", ["x"])
    engine.create_group(APP, "old", "Public", "x", ["a"])
    engine.reconcile(APP, _source())
    generation = client.get(keys.gen)
    assert generation not in (None, "0")
    relation_keys = all_keys(client, f"limiter:{{{APP}}}:*")
    names = {key.split(":")[2] for key in relation_keys if key.split(":")[2] in NAMESPACES}
    assert names == {"friends", "friended_by", "members", "joined"}
    assert all(
        key.split(":")[3] == generation for key in relation_keys if key.split(":")[2] in NAMESPACES
    )
    assert rebuild_keys(client, APP) == []
    assert check_app(engine, client, APP).violations == ()
    # the engine works on the new generation
    assert engine.user_usage(APP, "a").friends == 1
    assert engine.add_friends(APP, "c", ["a"]).added == ("a",)
    assert relation_key(client, keys, "friends", "c").endswith(f":{generation}:c")
    assert engine.user_usage(APP, "a").friends == 2
    second = engine.reconcile(APP, _source())
    assert (second.friendships.removed, second.friendships.added) == (2, 0)
    assert rebuild_keys(client, APP) == []


def test_a_rebuild_left_by_a_stopped_reconcile_is_deleted_by_a_later_one(
    engine: Any, client: Any, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reconcile whose process stops mid-way cannot delete its generation; the app's
    rebuilds hash lists it, and a reconcile more than an hour later deletes its keys (a
    younger one may be a reconcile still running)."""

    def stopped(self: Rebuild) -> Any:  # the process died: no abort ran
        return iter(())

    monkeypatch.setattr(Rebuild, "abort", stopped)
    monkeypatch.setattr("limiter.reconcile.rebuild.LOAD_ENTRIES", 2)  # loads before the stop

    def cut() -> Any:
        yield from _source()
        raise RuntimeError("the process stops")

    with pytest.raises(RuntimeError):
        engine.reconcile(APP, cut())
    left = rebuild_keys(client, APP)
    assert any(":rebuild:" in key for key in left)
    assert any(key.split(":")[2] in NAMESPACES for key in left)
    engine.reconcile(APP, _source())
    assert set(left) <= set(rebuild_keys(client, APP))  # too young to be taken for left over
    clock.advance(timedelta(hours=2))
    engine.reconcile(APP, _source())
    assert rebuild_keys(client, APP) == []
