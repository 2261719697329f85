"""The engine against both stores, sync and async: every limit below, at and over its value."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from limiter import (
    GroupExists,
    GroupNotFound,
    InvalidRequest,
    NotRegistered,
    Outcome,
    PlanConflict,
    Refused,
    Suspended,
    Usage,
    UserUsage,
)
from tests.conftest import APP

USERS = [f"u{i}" for i in range(120)]


def pro(engine, on=date(2026, 11, 20), months=1):
    return engine.set_edition(APP, "pro", purchased_on=on, months=months)


# -- accounts ------------------------------------------------------------------------------------


def test_trial_accounts_fill_in_request_order(engine):
    first = engine.register_users(APP, USERS[:99])
    assert first.added == tuple(USERS[:99])
    result = engine.register_users(APP, USERS[97:102])
    outcomes = [item.outcome for item in result.items]
    assert outcomes == [Outcome.ALREADY, Outcome.ALREADY, Outcome.ADDED] + [Outcome.REFUSED] * 2
    refusal = result.items[3].refusal
    assert (refusal.code, refusal.limit, refusal.scope, refusal.scope_id) == (
        70398,
        "users",
        "app",
        APP,
    )
    assert (refusal.current, refusal.maximum, refusal.edition) == (100, 100, "trial")
    assert refusal.lift.kind == "edition" and refusal.lift.id == "pro"
    assert engine.usage(APP).users == 100


def test_pro_accounts_are_unlimited(engine):
    pro(engine)
    assert len(engine.register_users(APP, USERS).added) == 120


def test_duplicates_in_one_batch_count_once(engine):
    result = engine.register_users(APP, ["a", "b", "a", "b", "c"])
    assert [item.id for item in result.items] == ["a", "b", "c"]
    assert engine.usage(APP).users == 3


def test_delete_users_releases_friends_on_both_sides_and_memberships(engine):
    engine.register_users(APP, ["a", "b", "c", "d"])
    engine.add_friends(APP, "a", ["b", "c"])
    engine.add_friends(APP, "d", ["a"], both_ways=False)
    engine.create_group(APP, "g", "Public", "b", ["a", "c"])
    engine.create_group(APP, "av", "AVChatRoom", "b", ["a"])
    [deleted] = engine.delete_users(APP, ["a"]).users
    assert (deleted.registered, deleted.friendships_released, deleted.memberships_released) == (
        True,
        5,
        2,
    )
    assert engine.user_usage(APP, "b").friends == 0
    assert engine.user_usage(APP, "d").friends == 0
    assert engine.group_usage(APP, "g").members == 2
    assert engine.group_usage(APP, "av").members == 1
    assert engine.usage(APP).users == 3
    assert engine.delete_users(APP, ["a"]).users[0].registered is False


# -- friends -------------------------------------------------------------------------------------


def test_friends_at_limit_minus_one_at_limit_and_over(engine, enroll):
    peers = [f"p{i}" for i in range(22)]
    enroll(APP, "me", *peers)
    result = engine.add_friends(APP, "me", peers[:19])
    assert len(result.added) == 19
    assert engine.add_friends(APP, "me", [peers[19]]).added == (peers[19],)
    over = engine.add_friends(APP, "me", peers[20:])
    assert [i.outcome for i in over.items] == [Outcome.REFUSED, Outcome.REFUSED]
    refusal = over.items[0].refusal
    assert (refusal.code, refusal.scope_id, refusal.current, refusal.maximum) == (
        30010,
        "me",
        20,
        20,
    )
    assert engine.user_usage(APP, "me").friends == 20
    assert engine.user_usage(APP, peers[20]).friends == 0


def test_peer_list_full_refuses_both_way_with_30014_but_not_single_way(engine, enroll):
    enroll(APP, "popular", "me", *[f"f{i}" for i in range(20)])
    engine.add_friends(APP, "popular", [f"f{i}" for i in range(20)])
    both = engine.add_friends(APP, "me", ["popular"])
    item = both.items[0]
    assert item.outcome is Outcome.REFUSED
    assert (item.refusal.code, item.refusal.scope_id, item.refusal.current) == (
        30014,
        "popular",
        20,
    )
    assert engine.user_usage(APP, "me").friends == 0
    single = engine.add_friends(APP, "me", ["popular"], both_ways=False)
    assert single.added == ("popular",)
    assert engine.user_usage(APP, "popular").friends == 20


def test_friend_add_is_idempotent_and_completes_a_single_way_relation(engine, enroll):
    enroll(APP, "a", "b")
    engine.add_friends(APP, "a", ["b"], both_ways=False)
    again = engine.add_friends(APP, "a", ["b"], both_ways=False)
    assert again.items[0].outcome is Outcome.ALREADY
    completed = engine.add_friends(APP, "a", ["b"])
    item = completed.items[0]
    assert item.outcome is Outcome.ADDED
    assert (item.requester_side, item.peer_side) == (False, True)
    assert engine.add_friends(APP, "b", ["a"]).items[0].outcome is Outcome.ALREADY
    assert engine.user_usage(APP, "a").friends == 1
    assert engine.user_usage(APP, "b").friends == 1


def test_remove_friends_both_ways_and_single_way(engine, enroll):
    enroll(APP, "a", "b", "c")
    engine.add_friends(APP, "a", ["b", "c"])
    single = engine.remove_friends(APP, "a", ["b"], both_ways=False)
    assert single.items[0].outcome is Outcome.REMOVED
    assert engine.user_usage(APP, "a").friends == 1
    assert engine.user_usage(APP, "b").friends == 1
    both = engine.remove_friends(APP, "a", ["c", "zz"])
    assert [i.outcome for i in both.items] == [Outcome.REMOVED, Outcome.ABSENT]
    assert engine.user_usage(APP, "c").friends == 0


def test_user_override_raises_friends_for_one_user_only(engine, enroll):
    enroll(APP, "vip", "plain", *[f"p{i}" for i in range(26)], *[f"q{i}" for i in range(26)])
    engine.set_override(APP, "friends", 25, user="vip")
    assert len(engine.add_friends(APP, "vip", [f"p{i}" for i in range(26)]).added) == 25
    assert len(engine.add_friends(APP, "plain", [f"q{i}" for i in range(26)]).added) == 20


def test_self_friendship_is_rejected(engine):
    with pytest.raises(InvalidRequest) as caught:
        engine.add_friends(APP, "a", ["b", "a"])
    assert caught.value.field == "peers"


# -- accounts first: relations name only registered accounts ------------------------------------


def test_an_unregistered_peer_is_not_registered_and_nothing_is_written(engine, enroll):
    enroll(APP, "me", "friend", "other")
    result = engine.add_friends(APP, "me", ["stranger", "friend"])
    assert [i.outcome for i in result.items] == [Outcome.NOT_REGISTERED, Outcome.ADDED]
    stranger = result.item("stranger")
    assert stranger.refusal is None
    assert (stranger.requester_side, stranger.peer_side) == (False, False)
    single = engine.add_friends(APP, "me", ["stranger"], both_ways=False)
    assert single.item("stranger").outcome is Outcome.NOT_REGISTERED
    assert single.item("stranger").refusal is None
    assert engine.decisions[("accounts", "not_registered")] == 2
    with pytest.raises(NotRegistered) as caught:
        engine.add_friends(APP, "me", ["other", "stranger"], all_or_nothing=True)
    assert (caught.value.app, caught.value.accounts) == (APP, ("stranger",))
    assert engine.user_usage(APP, "me").friends == 1
    assert engine.user_usage(APP, "friend").friends == 1
    assert engine.user_usage(APP, "other").friends == 0
    assert engine.user_usage(APP, "stranger") == UserUsage("stranger", False, 0, 0)
    assert engine.usage(APP).users == 3  # relating a stranger made no account either


def test_an_unregistered_requester_raises_not_registered(engine, enroll):
    enroll(APP, "friend")
    for both_ways in (True, False):
        with pytest.raises(NotRegistered) as caught:
            engine.add_friends(APP, "stranger", ["friend"], both_ways=both_ways)
        assert (caught.value.app, caught.value.accounts) == (APP, ("stranger",))
    with pytest.raises(NotRegistered):
        engine.reserve(APP, "add_friends", {"user": "stranger", "peers": ["friend"]})
    assert engine.user_usage(APP, "friend").friends == 0
    assert engine.user_usage(APP, "stranger").friends == 0
    assert engine.usage(APP).users == 1


# -- groups --------------------------------------------------------------------------------------


def test_group_members_at_limit_minus_one_at_limit_and_over(engine, enroll):
    enroll(APP, "owner", "x1", "x2", *[f"m{i}" for i in range(18)])
    engine.create_group(APP, "g", "Work", "owner", [f"m{i}" for i in range(18)])
    assert engine.group_usage(APP, "g").members == 19
    assert engine.add_members(APP, "g", ["x1"]).size == 20
    with pytest.raises(Refused) as caught:
        engine.add_members(APP, "g", ["x2"])
    refusal = caught.value.refusal
    assert (refusal.code, refusal.limit, refusal.scope, refusal.scope_id) == (
        10014,
        "group_members",
        "group",
        "g",
    )
    assert (refusal.current, refusal.maximum) == (20, 20)
    assert refusal.lift.id == "pro"


def test_a_batch_that_does_not_fit_changes_nothing(engine, enroll):
    enroll(APP, "owner", *[f"m{i}" for i in range(15)], *[f"x{i}" for i in range(5)])
    engine.create_group(APP, "g", "Public", "owner", [f"m{i}" for i in range(15)])
    with pytest.raises(Refused):
        engine.add_members(APP, "g", [f"x{i}" for i in range(5)] + ["m1"])
    assert engine.group_usage(APP, "g").members == 16
    assert engine.user_usage(APP, "x0").groups == 0
    fits = engine.add_members(APP, "g", [f"x{i}" for i in range(4)] + ["m1"])
    assert fits.added == ("x0", "x1", "x2", "x3")
    assert fits.item("m1").outcome is Outcome.ALREADY
    assert fits.size == 20


def test_create_group_refuses_too_many_initial_members_with_10038(engine, enroll):
    enroll(APP, "owner", *[f"m{i}" for i in range(20)])
    with pytest.raises(Refused) as caught:
        engine.create_group(APP, "g", "Meeting", "owner", [f"m{i}" for i in range(20)])
    assert (caught.value.code, caught.value.current, caught.value.maximum) == (10038, 21, 20)
    assert engine.group_usage(APP, "g") is None
    created = engine.create_group(APP, "g", "Meeting", "owner", [f"m{i}" for i in range(19)])
    assert (created.type, created.members) == ("ChatRoom", 20)


def test_groups_per_user_refuses_owner_or_member_and_names_them(engine, enroll):
    enroll(APP, "busy", "other", "owner", "fine", "blocked", "fresh", "loner", "fresh2")
    for n in range(49):
        engine.create_group(APP, f"g{n}", "Public", "busy")
    engine.create_group(APP, "g49", "Private", "other", ["busy"])
    assert engine.user_usage(APP, "busy").groups == 50
    engine.set_override(APP, "groups_per_user", 0, user="blocked")
    with pytest.raises(Refused) as caught:
        engine.create_group(APP, "next", "Public", "owner", ["fine", "busy", "blocked"])
    assert (caught.value.code, caught.value.scope_id, caught.value.current) == (10037, "busy", 50)
    assert [(o.scope_id, o.current, o.maximum) for o in caught.value.also] == [("blocked", 0, 0)]
    assert engine.group_usage(APP, "next") is None
    assert engine.user_usage(APP, "owner").groups == 0
    result = engine.add_members(APP, "g0", ["busy", "fresh"])
    assert result.item("busy").outcome is Outcome.ALREADY
    result = engine.add_members(APP, "g49", ["fresh"])
    assert result.added == ("fresh",)
    engine.create_group(APP, "lone", "Public", "loner")
    partial = engine.add_members(APP, "lone", ["busy", "fresh2"])
    assert partial.item("busy").outcome is Outcome.REFUSED
    assert partial.item("busy").refusal.code == 10037
    assert partial.added == ("fresh2",)


def test_av_chatrooms_do_not_count_toward_groups_per_user_and_are_capped(engine, enroll):
    enroll(APP, "host", *[f"viewer{i}" for i in range(300)])
    for n in range(10):
        engine.create_group(APP, f"av{n}", "AVChatRoom", "host")
    assert engine.user_usage(APP, "host").groups == 0
    assert engine.usage(APP).av_chatrooms == 10
    with pytest.raises(Refused) as caught:
        engine.create_group(APP, "av10", "AVChatRoom", "host")
    assert (caught.value.code, caught.value.limit, caught.value.current) == (
        10036,
        "av_chatrooms",
        10,
    )
    big = engine.add_members(APP, "av0", [f"viewer{i}" for i in range(300)])
    assert big.size == 301
    engine.destroy_group(APP, "av0")
    assert engine.create_group(APP, "av10", "AVChatRoom", "host").members == 1


def test_group_id_is_unique_and_missing_groups_are_reported(engine, enroll):
    enroll(APP, "owner", "a")
    engine.create_group(APP, "g", "Public", "owner")
    with pytest.raises(GroupExists):
        engine.create_group(APP, "g", "Private", "owner")
    with pytest.raises(GroupNotFound):
        engine.add_members(APP, "nope", ["a"])
    with pytest.raises(GroupNotFound):
        engine.remove_members(APP, "nope", ["a"])
    assert engine.destroy_group(APP, "nope").existed is False


def test_unknown_group_type_is_a_clear_error(engine):
    with pytest.raises(InvalidRequest) as caught:
        engine.create_group(APP, "g", "Club", "owner")
    assert caught.value.field == "type"


def test_remove_members_and_destroy_release_counts(engine, enroll):
    enroll(APP, "owner", "a", "b")
    engine.create_group(APP, "g", "Public", "owner", ["a", "b"])
    removed = engine.remove_members(APP, "g", ["a", "zz"])
    assert [i.outcome for i in removed.items] == [Outcome.REMOVED, Outcome.ABSENT]
    assert engine.user_usage(APP, "a").groups == 0
    destroyed = engine.destroy_group(APP, "g")
    assert (destroyed.existed, destroyed.members_released) == (True, 2)
    assert engine.user_usage(APP, "owner").groups == 0
    assert engine.usage(APP).groups == 0


def test_create_group_with_unregistered_people_names_every_one_and_creates_nothing(engine, enroll):
    enroll(APP, "owner", "member")
    strangers = [f"s{i}" for i in range(7)]  # more than the message shows
    with pytest.raises(NotRegistered) as caught:
        engine.create_group(APP, "g", "Public", "owner", ["member", *strangers])
    assert (caught.value.app, caught.value.accounts) == (APP, tuple(strangers))
    with pytest.raises(NotRegistered) as caught:
        engine.create_group(APP, "g", "Public", "s0", ["member", "s1"])
    assert caught.value.accounts == ("s0", "s1")
    with pytest.raises(NotRegistered) as caught:
        engine.create_group(APP, "av", "AVChatRoom", "s0")
    assert caught.value.accounts == ("s0",)
    values = {"group": "g", "type": "Public", "owner": "owner", "members": ["s1"]}
    with pytest.raises(NotRegistered):
        engine.reserve(APP, "create_group", values)
    assert engine.group_usage(APP, "g") is None
    assert engine.group_usage(APP, "av") is None
    assert engine.usage(APP) == Usage(2, 0, 0)
    assert engine.user_usage(APP, "owner").groups == 0
    assert engine.user_usage(APP, "member").groups == 0
    assert engine.create_group(APP, "g", "Public", "owner", ["member"]).members == 2


def test_add_members_adds_the_registered_and_not_the_others(engine, enroll):
    enroll(APP, "owner", "a", "b")
    engine.create_group(APP, "g", "Public", "owner")
    result = engine.add_members(APP, "g", ["a", "s1", "b", "s2"])
    assert [i.outcome for i in result.items] == [
        Outcome.ADDED,
        Outcome.NOT_REGISTERED,
        Outcome.ADDED,
        Outcome.NOT_REGISTERED,
    ]
    assert result.added == ("a", "b")
    assert result.item("s1").refusal is None
    assert result.size == 3
    assert engine.group_usage(APP, "g").members == 3
    assert engine.user_usage(APP, "a").groups == 1
    assert engine.user_usage(APP, "s1").groups == 0
    assert engine.decisions[("accounts", "not_registered")] == 2
    assert engine.usage(APP).users == 3


def test_add_members_all_or_nothing_raises_not_registered_and_adds_nobody(engine, enroll):
    enroll(APP, "owner", "c", "d")
    engine.create_group(APP, "g", "Public", "owner")
    with pytest.raises(NotRegistered) as caught:
        engine.add_members(APP, "g", ["c", "s3", "d", "s4"], all_or_nothing=True)
    assert (caught.value.app, caught.value.accounts) == (APP, ("s3", "s4"))
    with pytest.raises(NotRegistered) as caught:
        engine.reserve(APP, "add_members", {"group": "g", "users": ["c", "s3"]})
    assert caught.value.accounts == ("s3",)
    assert engine.group_usage(APP, "g").members == 1
    assert engine.user_usage(APP, "c").groups == 0
    assert engine.user_usage(APP, "s3").groups == 0
    assert engine.add_members(APP, "g", ["c", "d"], all_or_nothing=True).added == ("c", "d")


def test_login_of_an_unregistered_user_is_not_counted(engine, enroll):
    enroll(APP, "member")
    stranger = engine.record_login(APP, "stranger")
    assert (stranger.registered, stranger.counted, stranger.dau) == (False, False, 0)
    member = engine.record_login(APP, "member")
    assert (member.registered, member.counted, member.dau) == (True, True, 1)
    again = engine.record_login(APP, "stranger")
    assert (again.registered, again.counted, again.dau) == (False, False, 1)


def test_without_accounts_first_unregistered_ids_are_related_as_before(make_engine):
    # The old behaviour: only with the setting off may relations name ids that are not accounts.
    engine = make_engine(require_registered=False)
    friends = engine.add_friends(APP, "a", ["b", "c"])
    assert friends.added == ("b", "c")
    assert engine.add_friends(APP, "d", ["a"], both_ways=False).added == ("a",)
    assert engine.create_group(APP, "g", "Public", "a", ["b"]).members == 2
    added = engine.add_members(APP, "g", ["c", "e"], all_or_nothing=True)
    assert added.added == ("c", "e")
    assert engine.add_members(APP, "g", ["f"]).added == ("f",)
    assert engine.user_usage(APP, "a").friends == 2
    assert engine.user_usage(APP, "b").friends == 1
    assert engine.group_usage(APP, "g").members == 5
    assert engine.user_usage(APP, "e").groups == 1
    assert engine.usage(APP) == Usage(0, 1, 0)  # still no accounts
    login = engine.record_login(APP, "a")
    assert (login.registered, login.counted, login.dau) == (True, True, 1)
    assert engine.decisions[("accounts", "not_registered")] == 0


# -- pro and expansions --------------------------------------------------------------------------


def test_pro_limits_and_group_members_expansions(engine, enroll):
    pro(engine)
    enroll(APP, "owner", "x", *[f"m{i}" for i in range(199)])
    engine.create_group(APP, "g", "Public", "owner", [f"m{i}" for i in range(199)])
    with pytest.raises(Refused) as caught:
        engine.add_members(APP, "g", ["x"])
    assert caught.value.maximum == 200
    assert caught.value.lift.id == "group_members_2000"
    engine.add_expansion(APP, "group_members_2000", date(2026, 11, 25))
    assert engine.add_members(APP, "g", ["x"]).size == 201
    engine.add_expansion(APP, "group_members_6000", date(2026, 11, 25))
    assert engine.limits(APP).group_members["Public"].value == 6000
    assert engine.limits(APP).group_members["AVChatRoom"].value is None


def test_groups_per_user_expansions_take_the_larger(engine):
    pro(engine)
    engine.add_expansion(APP, "groups_per_user_1000", date(2026, 11, 25))
    engine.add_expansion(APP, "groups_per_user_400", date(2026, 11, 25))
    assert engine.limits(APP).app["groups_per_user"].value == 1000


def test_av_unlimited_and_history_expansions(engine):
    pro(engine)
    engine.add_expansion(APP, "av_chatrooms_unlimited", date(2026, 11, 25))
    grant = engine.add_expansion(APP, "history_extension", date(2026, 11, 25), days=30)
    limits = engine.limits(APP)
    assert limits.app["av_chatrooms"].value is None
    assert limits.app["history_days"].value == 30
    assert {g.id for g in engine.plan(APP).expansions} >= {grant.id}
    assert engine.remove_expansion(APP, grant.id) is True
    assert engine.remove_expansion(APP, grant.id) is False
    assert engine.limits(APP).app["history_days"].value == 7


def test_trial_cannot_buy_expansions_and_bad_expansions_are_refused(engine):
    with pytest.raises(PlanConflict):
        engine.add_expansion(APP, "group_members_2000", date(2026, 11, 25))
    pro(engine)
    with pytest.raises(InvalidRequest) as caught:
        engine.add_expansion(APP, "history_extension", date(2026, 11, 25), days=400)
    assert caught.value.field == "days"
    with pytest.raises(InvalidRequest) as caught:
        engine.add_expansion(APP, "group_members_9000", date(2026, 11, 25))
    assert caught.value.field == "kind"
    assert engine.plan(APP).expansions == ()


# -- lower limits never evict --------------------------------------------------------------------


def test_lower_limits_never_evict(engine, clock, enroll):
    pro(engine)
    enroll(APP, "owner", "a", "new", *[f"m{i}" for i in range(300)], *[f"p{i}" for i in range(30)])
    grant = engine.add_expansion(APP, "group_members_2000", date(2026, 11, 25))
    engine.create_group(APP, "g", "Public", "owner", [f"m{i}" for i in range(300)])
    engine.add_friends(APP, "a", [f"p{i}" for i in range(30)])
    engine.remove_expansion(APP, grant.id)
    engine.set_override(APP, "friends", 10, user="a")
    assert engine.group_usage(APP, "g").members == 301
    assert engine.user_usage(APP, "a").friends == 30
    with pytest.raises(Refused) as caught:
        engine.add_members(APP, "g", ["new"])
    assert (caught.value.current, caught.value.maximum) == (301, 200)
    assert engine.add_friends(APP, "a", ["new"]).items[0].refusal.code == 30010
    engine.remove_members(APP, "g", [f"m{i}" for i in range(101)])
    assert engine.group_usage(APP, "g").members == 200
    with pytest.raises(Refused):
        engine.add_members(APP, "g", ["new"])
    engine.remove_members(APP, "g", ["m101"])
    assert engine.add_members(APP, "g", ["new"]).size == 200
    engine.remove_friends(APP, "a", [f"p{i}" for i in range(21)])
    assert engine.add_friends(APP, "a", ["new"]).items[0].outcome is Outcome.ADDED


def test_group_override_and_app_override(engine, enroll):
    # The users override first: the group's accounts, enrolled below, would count toward it.
    engine.set_override(APP, "users", 2)
    assert len(engine.register_users(APP, ["x", "y", "z"]).added) == 2
    engine.set_override(APP, "users", None)
    assert engine.register_users(APP, ["z"]).added == ("z",)
    enroll(APP, "owner", "a", "b", "c")
    engine.create_group(APP, "g", "Public", "owner")
    engine.set_override(APP, "group_members", 3, group="g")
    engine.add_members(APP, "g", ["a", "b"])
    with pytest.raises(Refused) as caught:
        engine.add_members(APP, "g", ["c"])
    assert caught.value.maximum == 3 and caught.value.lift is None
    assert engine.clear_override(APP, "group_members", group="g") is True
    assert engine.add_members(APP, "g", ["c"]).size == 4


def test_override_expiry_follows_the_clock(engine, clock, enroll):
    enroll(APP, "a", "b", "c")
    engine.set_override(APP, "friends", 1, expires_at=clock.now() + timedelta(hours=1), user="a")
    assert engine.add_friends(APP, "a", ["b", "c"]).added == ("b",)
    clock.advance(timedelta(hours=1))
    assert engine.add_friends(APP, "a", ["c"]).added == ("c",)


def test_override_validation_names_the_field(engine):
    cases = [
        (("nope", 1), {}, "limit"),
        (("friends", -1), {}, "value"),
        (("users", 5), {"user": "a"}, "limit"),
        (("friends", 5), {"group": "g"}, "limit"),
    ]
    for args, kwargs, field in cases:
        with pytest.raises(InvalidRequest) as caught:
            engine.set_override(APP, *args, **kwargs)
        assert caught.value.field == field
    assert engine.plan(APP).app_overrides == {}


# -- edition periods, grace and suspension -------------------------------------------------------


def test_grace_then_suspension_then_renewal(engine, clock, enroll):
    pro(engine, on=date(2026, 10, 27))  # through 2026-11-26
    enroll(APP, "owner", "a", "b", "c")
    engine.create_group(APP, "g", "Public", "owner", ["a"])
    assert engine.limits(APP).status == "active"
    clock.advance(timedelta(hours=12))  # 00:00 on Nov 27, Beijing
    assert engine.limits(APP).status == "grace"
    assert engine.add_members(APP, "g", ["b"]).size == 3
    clock.advance(timedelta(hours=24))
    assert engine.limits(APP).status == "suspended"
    with pytest.raises(Suspended) as caught:
        engine.add_members(APP, "g", ["c"])
    assert caught.value.code == 60020
    with pytest.raises(Suspended):
        engine.register_users(APP, ["c"])
    assert engine.remove_members(APP, "g", ["b"]).items[0].outcome is Outcome.REMOVED
    assert engine.destroy_group(APP, "g").existed
    renewed = engine.renew(APP)
    assert renewed.periods[-1].starts_on == date(2026, 11, 28)
    assert engine.limits(APP).status == "active"


def test_renewal_extends_from_the_day_after_the_end(engine):
    pro(engine, on=date(2026, 11, 20), months=2)  # through 2027-01-19
    plan = engine.renew(APP, months=1)
    assert plan.periods[-1].starts_on == date(2027, 1, 20)
    assert plan.periods[-1].ends_on == date(2027, 2, 19)
    assert engine.limits(APP).period.ends_on == date(2027, 2, 19)


def test_plan_changes_validate_before_writing(engine):
    with pytest.raises(InvalidRequest) as caught:
        engine.set_edition(APP, "pro")
    assert caught.value.field == "purchased_on"
    with pytest.raises(InvalidRequest) as caught:
        engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 1), months=0)
    assert caught.value.field == "months"
    with pytest.raises(InvalidRequest) as caught:
        engine.set_edition(APP, "gold", purchased_on=date(2026, 11, 1))
    assert caught.value.field == "edition"
    with pytest.raises(PlanConflict):
        engine.renew(APP)
    assert engine.plan(APP).edition == "trial"


# -- shadow mode ---------------------------------------------------------------------------------


def test_shadow_mode_lets_additions_through_and_counts_them(make_engine, enroll):
    engine = make_engine(policies={"group_members": "shadow", "users": "shadow"})
    # Accounts first, before the relations' accounts are enrolled (they would count).
    registered = engine.register_users(APP, [f"u{i}" for i in range(101)])
    assert len(registered.added) == 101
    assert (registered.items[-1].refusal.code, registered.items[-1].refusal.current) == (70398, 100)
    assert engine.decisions[("users", "shadow_refused")] == 1
    enroll(APP, "owner", "x", "y", "a", *[f"m{i}" for i in range(19)])
    enroll(APP, *[f"p{i}" for i in range(21)])
    engine.create_group(APP, "g", "Public", "owner", [f"m{i}" for i in range(19)])
    result = engine.add_members(APP, "g", ["x", "y"])
    assert result.size == 22
    assert result.shadowed.code == 10014
    assert engine.decisions[("group_members", "shadow_refused")] == 1
    friends = engine.add_friends(APP, "a", [f"p{i}" for i in range(21)])
    assert friends.items[-1].outcome is Outcome.REFUSED


def test_shadow_friends_reports_both_waived_lists(make_engine, enroll):
    engine = make_engine(policies={"friends": "shadow"})
    enroll(APP, "a", "b", *[f"p{i}" for i in range(20)], *[f"q{i}" for i in range(20)])
    engine.add_friends(APP, "a", [f"p{i}" for i in range(20)])
    engine.add_friends(APP, "b", [f"q{i}" for i in range(20)])
    item = engine.add_friends(APP, "a", ["b"]).items[0]
    assert item.outcome is Outcome.ADDED
    assert (item.refusal.code, item.refusal.scope_id, item.refusal.current) == (30010, "a", 20)
    assert engine.decisions[("friends", "shadow_refused")] == 2
    assert engine.user_usage(APP, "b").friends == 21


# -- reservations --------------------------------------------------------------------------------


def test_reservation_is_all_or_nothing_and_release_undoes_exactly(engine, enroll):
    # Accounts first, before the friends' accounts are enrolled (they would count).
    engine.register_users(APP, [f"u{i}" for i in range(98)])
    with pytest.raises(Refused) as caught:
        engine.reserve(APP, "register_users", {"users": ["n1", "u0", "n2", "n3"]})
    assert (caught.value.code, caught.value.current) == (70398, 98)
    assert engine.usage(APP).users == 98
    enroll(APP, "a", "old", "new")
    engine.add_friends(APP, "a", ["old"], both_ways=False)
    held = engine.reserve(APP, "add_friends", {"user": "a", "peers": ["old", "new"]})
    assert engine.user_usage(APP, "old").friends == 1
    engine.release(held)
    assert engine.user_usage(APP, "a").friends == 1
    assert engine.user_usage(APP, "old").friends == 0
    assert engine.user_usage(APP, "new").friends == 0
    with pytest.raises(InvalidRequest) as caught:
        engine.reserve(APP, "add_members", {"users": ["a"]})
    assert caught.value.field == "group"


def test_a_refused_reservation_writes_nothing_at_all(engine, enroll):
    enroll(APP, "busy", "owner", "x", "y", *[f"m{i}" for i in range(16)])
    enroll(APP, "full", "a", "b", "c", *[f"p{i}" for i in range(20)])
    engine.set_override(APP, "groups_per_user", 1, user="busy")
    engine.create_group(APP, "elsewhere", "Public", "busy")
    engine.create_group(APP, "g", "Public", "owner", [f"m{i}" for i in range(16)])
    with pytest.raises(Refused) as caught:
        engine.reserve(APP, "add_members", {"group": "g", "users": ["x", "busy", "y"]})
    assert (caught.value.code, caught.value.scope_id) == (10037, "busy")
    assert engine.group_usage(APP, "g").members == 17
    assert engine.user_usage(APP, "x").groups == 0
    engine.add_friends(APP, "full", [f"p{i}" for i in range(20)])
    with pytest.raises(Refused) as caught:
        engine.reserve(APP, "add_friends", {"user": "a", "peers": ["b", "full", "c"]})
    assert (caught.value.code, caught.value.scope_id) == (30014, "full")
    assert engine.user_usage(APP, "a").friends == 0
    assert engine.user_usage(APP, "b").friends == 0


def test_all_or_nothing_calls_outside_reservations(engine, enroll):
    engine.register_users(APP, [f"u{i}" for i in range(99)])
    with pytest.raises(Refused) as caught:
        engine.register_users(APP, ["n1", "n2"], all_or_nothing=True)
    assert (caught.value.current, caught.value.maximum) == (99, 100)
    assert engine.register_users(APP, ["n1"], all_or_nothing=True).added == ("n1",)
    enroll(APP, "a", "q1", "q2", *[f"p{i}" for i in range(19)])
    engine.add_friends(APP, "a", [f"p{i}" for i in range(19)])
    with pytest.raises(Refused) as caught:
        engine.add_friends(APP, "a", ["q1", "q2"], all_or_nothing=True)
    assert (caught.value.code, caught.value.current, caught.value.maximum) == (30010, 19, 20)
    assert engine.user_usage(APP, "a").friends == 19


def test_releasing_accounts_leaves_their_relations_alone(make_engine):
    # Relations made before the accounts (u2 never registers): only with accounts first off.
    engine = make_engine(require_registered=False)
    engine.add_friends(APP, "u1", ["u2"])
    engine.create_group(APP, "g1", "Public", "u2", ["u1"])
    held = engine.reserve(APP, "register_users", {"users": ["u1", "fresh"]})
    engine.release(held)
    assert engine.usage(APP).users == 0
    assert engine.user_usage(APP, "u1").friends == 1
    assert engine.user_usage(APP, "u1").groups == 1


def test_releasing_accounts_leaves_relations_made_while_they_were_held(engine):
    held = engine.reserve(APP, "register_users", {"users": ["u1", "u2"]})
    engine.add_friends(APP, "u1", ["u2"])
    engine.create_group(APP, "g1", "Public", "u2", ["u1"])
    engine.release(held)
    assert engine.usage(APP).users == 0
    assert engine.user_usage(APP, "u1").friends == 1
    assert engine.user_usage(APP, "u1").groups == 1
    with pytest.raises(NotRegistered):  # no longer accounts: no new relations
        engine.add_friends(APP, "u2", ["u3"])


def test_both_ways_accepts_booleans_and_their_query_spellings(engine, enroll):
    enroll(APP, "a", "b", "c")
    engine.add_friends(APP, "a", ["b"], both_ways="false")
    assert engine.user_usage(APP, "b").friends == 0
    engine.add_friends(APP, "a", ["c"], both_ways="1")
    assert engine.user_usage(APP, "c").friends == 1
    with pytest.raises(InvalidRequest) as caught:
        engine.remove_friends(APP, "a", ["c"], both_ways="maybe")
    assert caught.value.field == "both_ways"
    assert engine.user_usage(APP, "c").friends == 1


def test_batches_are_capped(make_engine):
    engine = make_engine(max_batch=5)
    with pytest.raises(InvalidRequest) as caught:
        engine.register_users(APP, [f"u{i}" for i in range(6)])
    assert (caught.value.field, engine.usage(APP).users) == ("users", 0)
    assert len(engine.register_users(APP, [f"u{i}" for i in range(5)]).added) == 5


def test_wrong_types_are_invalid_requests_not_crashes(engine):
    cases = [
        (lambda: engine.set_edition(APP, "pro", "2026-01-01"), "purchased_on"),
        (lambda: engine.set_edition(APP, "pro", date(2026, 1, 1), months=10**5), "months"),
        (lambda: engine.remove_expansion(APP, None), "id"),
        (lambda: engine.reserve(APP, "register_users", None), "values"),
        (lambda: engine.reserve(APP, ["x"], {}), "action"),
        (lambda: engine.register_users(APP, [1]), "users"),
        (lambda: engine.register_users(APP, None), "users"),
        (lambda: engine.add_members(APP, 7, ["a"]), "group"),
    ]
    for call, field in cases:
        with pytest.raises(InvalidRequest) as caught:
            call()
        assert caught.value.field == field
    assert engine.plan(APP).edition == "trial"
