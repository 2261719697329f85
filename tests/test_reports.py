"""Operator reports on both stores, sync and async: the audit log of plan changes, and the
over-limit report (lower limits never evict, so the report is how an operator sees who is over).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from limiter import InvalidRequest, Limiter, PlanConflict, Settings, SyncStore
from limiter.catalog import Catalog, load_catalog
from limiter.ops import plan_changes
from limiter.reconcile import AccountRecord, GroupRecord
from limiter.results import OverLimit
from tests.conftest import APP, Backend, Enroll, at, keys_of

OTHER_APP = "1400000002"


# -- the audit log --------------------------------------------------------------------------------


def test_audit_is_newest_first_bounded_and_names_each_actor(make_engine, clock, client):
    engine = make_engine(audit_entries=3)
    clock.set(at(2026, 11, 20, 10, 0))
    engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 20), actor="alice")
    clock.advance(timedelta(minutes=1))
    engine.add_expansion(APP, "group_members_2000", date(2026, 11, 20), actor="bob")
    clock.advance(timedelta(minutes=1))
    engine.set_override(APP, "friends", 25, user="vip", actor="carol")
    clock.advance(timedelta(minutes=1))
    engine.set_override(APP, "friends", 30, user="vip", actor="dave")
    clock.advance(timedelta(minutes=1))
    engine.clear_override(APP, "friends", user="vip", actor="erin")

    entries = engine.audit(APP, 10)
    assert [(e.actor, e.action) for e in entries] == [
        ("erin", "clear_override"),
        ("dave", "set_override"),
        ("carol", "set_override"),
    ]
    assert [e.at for e in entries] == [
        at(2026, 11, 20, 10, 4),
        at(2026, 11, 20, 10, 3),
        at(2026, 11, 20, 10, 2),
    ]
    assert {e.field for e in entries} == {"override:user:friends:vip"}
    assert [(e.before, e.after) for e in entries] == [
        ({"value": 30, "expires_at": None}, None),
        ({"value": 25, "expires_at": None}, {"value": 30, "expires_at": None}),
        (None, {"value": 25, "expires_at": None}),
    ]
    assert engine.audit(APP, 2) == entries[:2]
    assert engine.audit(APP) == entries  # the default asks for more than are kept
    assert client.llen(keys_of(engine, APP).audit) == 3


def test_audit_decodes_plan_values_before_and_after(engine):
    engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 20))
    engine.renew(APP)
    grant = engine.add_expansion(APP, "history_extension", date(2026, 11, 21), days=30)
    engine.remove_expansion(APP, grant.id, actor="ops")
    engine.set_override(APP, "users", 500, at(2027, 1, 1, 0, 0))
    override, removed, added, renewed, bought = engine.audit(APP)

    first_period = ["2026-11-20", "2026-12-19"]
    assert (bought.action, bought.field, bought.actor) == ("set_edition", "edition", "python")
    assert bought.before is None
    assert bought.after == {
        "edition": "pro",
        "periods": [first_period],
        "purchases": [["2026-11-20", 1]],
    }
    assert renewed.action == "renew"
    assert renewed.before == bought.after
    assert renewed.after == {
        "edition": "pro",
        "periods": [first_period, ["2026-12-20", "2027-01-19"]],
        "purchases": [["2026-11-20", 1], ["2026-11-26", 1]],
    }
    expansion = {
        "kind": "history_extension",
        "periods": [["2026-11-21", "2026-12-20"]],
        "days": 30,
    }
    assert (added.action, added.field) == ("add_expansion", f"expansion:{grant.id}")
    assert (added.before, added.after) == (None, expansion)
    assert (removed.action, removed.actor) == ("remove_expansion", "ops")
    assert (removed.before, removed.after) == (expansion, None)
    assert (override.field, override.before) == ("override:app:users", None)
    assert override.after == {"value": 500, "expires_at": "2027-01-01T00:00:00+08:00"}


def test_changes_that_change_nothing_write_no_entry(engine):
    engine.set_override(APP, "friends", 25, user="vip")
    before = engine.audit(APP)
    assert len(before) == 1
    # deleting what is not there
    assert engine.clear_override(APP, "friends", user="nobody") is False
    assert engine.clear_override(APP, "groups_per_user") is False
    assert engine.remove_expansion(APP, "no-such-grant") is False
    # refused before writing
    with pytest.raises(PlanConflict):
        engine.add_expansion(APP, "group_members_2000", date(2026, 11, 20))
    with pytest.raises(PlanConflict):
        engine.renew(APP)
    with pytest.raises(InvalidRequest):
        engine.set_override(APP, "friends", -1)
    assert engine.audit(APP) == before


def test_a_compare_and_set_that_lost_writes_no_entry(engine):
    """A renewal whose compare-and-set found the edition changed under it writes nothing
    (it then retries); drive that one write with a stale expected value."""
    engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 20))
    before = engine.audit(APP)
    stale = '{"edition": "pro", "periods": [], "purchases": []}'
    write = plan_changes._write(
        engine.context, APP, "edition", stale, ("renew", "racer"), expected="stale"
    )
    assert engine.run(write) is False
    assert engine.audit(APP) == before
    assert engine.plan(APP).periods != ()


def test_each_app_has_its_own_audit(engine):
    engine.set_override(APP, "friends", 25)
    engine.set_override(OTHER_APP, "friends", 26, actor="other")
    assert [e.after["value"] for e in engine.audit(APP)] == [25]
    assert [(e.actor, e.after["value"]) for e in engine.audit(OTHER_APP)] == [("other", 26)]


@pytest.mark.parametrize("limit", [0, -1, True, 2.0, "5"])
def test_audit_limit_must_be_a_positive_whole_number(engine, limit):
    with pytest.raises(InvalidRequest) as caught:
        engine.audit(APP, limit)
    assert caught.value.field == "limit"


# -- the over-limit report ------------------------------------------------------------------------


def test_nothing_is_listed_within_the_limits(engine):
    assert engine.over_limit(APP) == ()
    engine.register_users(APP, [f"u{i}" for i in range(100)])
    engine.add_friends(APP, "u0", [f"u{i}" for i in range(1, 21)])
    engine.create_group(APP, "full", "Public", "u0", [f"u{i}" for i in range(1, 20)])
    for n in range(10):
        engine.create_group(APP, f"av{n}", "AVChatRoom", "u1", [f"u{i}" for i in range(50)])
    assert engine.over_limit(APP) == ()  # everything exactly at its limit is not over


def test_users_over_friends_and_groups_per_user_once_an_override_is_lowered(engine, enroll: Enroll):
    peers = [f"peer{i}" for i in range(5)]
    enroll(APP, "hub", *peers, "joiner", "host", *[f"owner{n}" for n in range(4)])
    engine.add_friends(APP, "hub", peers)
    for n in range(4):
        engine.create_group(APP, f"g{n}", "Public", f"owner{n}", ["joiner"])
    for n in range(3):  # AV chat rooms do not count toward groups_per_user
        engine.create_group(APP, f"av{n}", "AVChatRoom", "host", ["joiner"])
    engine.set_override(APP, "friends", 3)
    engine.set_override(APP, "groups_per_user", 2, user="joiner")
    assert set(engine.over_limit(APP)) == {
        OverLimit("user", "hub", "friends", 5, 3),
        OverLimit("user", "joiner", "groups_per_user", 4, 2),
    }
    # a user's own override wins over the app's
    engine.set_override(APP, "friends", 10, user="hub")
    engine.clear_override(APP, "groups_per_user", user="joiner")
    engine.set_override(APP, "groups_per_user", 3)
    assert engine.over_limit(APP) == (OverLimit("user", "joiner", "groups_per_user", 4, 3),)


def test_groups_over_group_members_by_type_group_override_and_app_override(engine, enroll: Enroll):
    sizes = {"a": 24, "b": 21, "c": 19, "d": 39, "e": 4}  # the members besides "o"
    enroll(APP, "o", *[f"{c}{i}" for c, n in sizes.items() for i in range(n)])
    # 108 accounts: past the users limit, which this test is not about
    engine.set_override(APP, "users", None)
    engine.set_override(APP, "group_members", 40)  # room to build groups above 20
    engine.create_group(APP, "pub", "Public", "o", [f"a{i}" for i in range(24)])  # 25
    engine.create_group(APP, "priv", "Work", "o", [f"b{i}" for i in range(21)])  # 22
    engine.create_group(APP, "chat", "Meeting", "o", [f"c{i}" for i in range(19)])  # 20
    engine.create_group(APP, "av", "AVChatRoom", "o", [f"d{i}" for i in range(39)])  # 40
    engine.create_group(APP, "small", "Public", "o", [f"e{i}" for i in range(4)])  # 5
    engine.clear_override(APP, "group_members")
    assert set(engine.over_limit(APP)) == {
        OverLimit("group", "pub", "group_members", 25, 20),
        OverLimit("group", "priv", "group_members", 22, 20),
    }
    engine.set_override(APP, "group_members", 3, group="small")
    engine.set_override(APP, "group_members", 30, group="pub")
    engine.set_override(APP, "group_members", None, group="priv")
    assert engine.over_limit(APP) == (OverLimit("group", "small", "group_members", 5, 3),)
    # an app-wide override covers every limited type, not the unlimited AV rooms, and not a
    # group with its own override
    engine.set_override(APP, "group_members", 10)
    assert set(engine.over_limit(APP)) == {
        OverLimit("group", "small", "group_members", 5, 3),
        OverLimit("group", "chat", "group_members", 20, 10),
    }


def test_each_group_is_judged_by_its_own_types_limit(backend: Backend, clock, enroll: Enroll):
    data = load_catalog().model_dump(mode="json")
    data["editions"]["trial"]["limits"]["group_members"]["ChatRoom"] = 10
    catalog = Catalog.model_validate(data)
    settings = Settings(redis_url="memory://unused", cache_seconds=0)
    engine = Limiter(
        SyncStore(backend.sync_client()), settings=settings, catalog=catalog, clock=clock
    )
    try:
        enroll(APP, "o", *[f"c{i}" for i in range(14)], *[f"p{i}" for i in range(14)])
        engine.set_override(APP, "group_members", 15, group="chat")
        engine.create_group(APP, "chat", "ChatRoom", "o", [f"c{i}" for i in range(14)])  # 15
        engine.create_group(APP, "pub", "Public", "o", [f"p{i}" for i in range(14)])  # 15
        assert engine.over_limit(APP) == ()
        engine.clear_override(APP, "group_members", group="chat")
        assert engine.over_limit(APP) == (OverLimit("group", "chat", "group_members", 15, 10),)
    finally:
        engine.close()


def test_app_scope_accounts_and_av_rooms_after_a_reconcile(engine):
    engine.register_users(APP, [f"acct{i:03d}" for i in range(10)])
    engine.create_group(APP, "room00", "AVChatRoom", "acct000")
    source: list[Any] = [AccountRecord(f"acct{i:03d}") for i in range(150)]
    source += [GroupRecord(f"room{n:02d}", "AVChatRoom", (), owner="acct000") for n in range(12)]
    engine.reconcile(APP, source)
    assert set(engine.over_limit(APP)) == {
        OverLimit("app", APP, "users", 150, 100),
        OverLimit("app", APP, "av_chatrooms", 12, 10),
    }
    # pro lifts both
    engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 20))
    assert engine.over_limit(APP) == ()


def test_the_report_reads_big_relation_sets_across_chunks(engine, enroll: Enroll):
    """More than 5000 entries in the friends, members and joined sets, with subjects that
    straddle the chunk boundaries: every count is summed whole."""
    engine.set_override(APP, "users", None)  # the accounts enrolled: past the trial's 100
    engine.set_override(APP, "friends", None)
    engine.set_override(APP, "group_members", None)
    friends = {f"p{i:03d}": 20 + i % 31 for i in range(150)}  # 5185 entries
    enroll(APP, *friends, *[f"q{j:02d}" for j in range(50)], "o1", "o2", "o3")
    enroll(APP, *[f"s{i:02d}" for i in range(20)], *[f"t{i:02d}" for i in range(19)])
    enroll(APP, *[f"m{i:04d}" for i in range(5199)])
    for user, count in friends.items():
        engine.add_friends(APP, user, [f"q{j:02d}" for j in range(count)], both_ways=False)
    engine.create_group(APP, "a-small", "Public", "o1", [f"s{i:02d}" for i in range(20)])  # 21
    engine.create_group(APP, "mega", "Public", "o2", [f"m{i:04d}" for i in range(5199)])  # 5200
    engine.create_group(APP, "z-small", "Public", "o3", [f"t{i:02d}" for i in range(19)])  # 20
    engine.clear_override(APP, "friends")
    engine.clear_override(APP, "group_members")

    report = engine.over_limit(APP)
    assert len(report) == len(set(report))  # nobody listed twice
    expected = {
        OverLimit("user", user, "friends", count, 20)
        for user, count in friends.items()
        if count > 20
    }
    expected |= {
        OverLimit("group", "a-small", "group_members", 21, 20),
        OverLimit("group", "mega", "group_members", 5200, 20),
    }
    assert len(expected) == 147
    assert set(report) == expected
