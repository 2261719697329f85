"""The example's ``group_open_http_svc`` commands: groups of every type created up to their
limits, members added and removed, groups destroyed (also when retried after an outage), and
``get_group_info`` showing the limit the plan gives."""

from __future__ import annotations

import re
from typing import Any

import pytest

from limiter import GroupUsage, Usage
from tests.conftest import APP
from tests.example_support import (
    ADD_MEMBERS,
    CREATE_GROUP,
    DELETE_MEMBERS,
    DESTROY_GROUP,
    GROUP_INFO,
    Im,
    down,
    fail,
    go_pro,
    members,
    ok,
    refused,
)

GROUP_ID = re.compile(r"@TGS#[A-Z0-9]{10}")
AV_GROUP_ID = re.compile(r"@TGS#a[A-Z0-9]{10}")


@pytest.mark.parametrize(
    ("given", "canonical", "maximum"),
    [
        ("Private", "Private", 20),
        ("Work", "Private", 20),
        ("Public", "Public", 20),
        ("ChatRoom", "ChatRoom", 20),
        ("Meeting", "ChatRoom", 20),
        ("AVChatRoom", "AVChatRoom", None),
    ],
)
def test_create_group_of_each_type(im: Im, given: str, canonical: str, maximum: int | None) -> None:
    im.import_users("alice", "bob")
    body = {"Owner_Account": "alice", "Type": given, "Name": "team", "MemberList": members("bob")}

    answer = im.call(CREATE_GROUP, body)

    group = answer["GroupId"]
    assert answer == ok(GroupId=group)
    av = canonical == "AVChatRoom"
    assert (AV_GROUP_ID if av else GROUP_ID).fullmatch(group)
    assert im.tables()["groups"] == {(group, canonical, "alice", "team")}
    assert im.members_of(group) == {"alice", "bob"}
    assert im.group(group) == GroupUsage(group, canonical, 2)
    assert im.usage() == Usage(users=2, groups=1, av_chatrooms=int(av))
    assert im.user("alice") == (True, 0, 0 if av else 1)
    info = im.call(GROUP_INFO, {"GroupIdList": [group]})
    assert info == ok(
        GroupInfo=[
            {
                "GroupId": group,
                "ErrorCode": 0,
                "ErrorInfo": "",
                "Type": canonical,
                "Name": "team",
                "Owner_Account": "alice",
                "MemberNum": 2,
                "MaxMemberNum": maximum,
            }
        ]
    )


CROWD = tuple(f"m{i:02d}" for i in range(20))


@pytest.mark.parametrize(
    ("change", "answer"),
    [
        pytest.param(
            {"MemberList": members(*CROWD)},
            fail(10038, refused("group_members", 20, "group", "new", 21, 10038)),
            id="21 initial members",
        ),
        pytest.param(
            {"GroupId": "taken"},
            fail(10021, f"group 'taken' already exists in app '{APP}'"),
            id="GroupId taken",
        ),
        pytest.param(
            {"Type": "Community"},
            fail(
                10004,
                "Type: unknown group type 'Community' "
                "(known: Private, Public, ChatRoom, AVChatRoom)",
            ),
            id="unknown Type",
        ),
        pytest.param(
            {"Owner_Account": "ghost"},
            fail(10004, "not imported: 'ghost'"),
            id="owner not imported",
        ),
        pytest.param(
            {"MemberList": members("m00", "ghost", "nobody")},
            fail(10004, "not imported: 'ghost', 'nobody'"),
            id="members not imported",
        ),
    ],
)
def test_create_group_refused_whole(im: Im, change: dict[str, Any], answer: dict[str, Any]) -> None:
    im.import_users("alice", *CROWD)
    im.create_group("alice", group="taken")
    before = im.snapshot(("alice", "m00"), ("taken", "new"))
    body = {"Owner_Account": "alice", "Type": "Public", "GroupId": "new", "Name": "new", **change}

    assert im.call(CREATE_GROUP, body) == answer

    assert im.snapshot(("alice", "m00"), ("taken", "new")) == before


def test_create_group_counts_the_owner_once(im: Im) -> None:
    im.import_users("alice", *CROWD[:19])
    body = {
        "Owner_Account": "alice",
        "Type": "Work",
        "GroupId": "full",
        "Name": "full",
        "MemberList": members("alice", *CROWD[:19], CROWD[0]),
    }

    assert im.call(CREATE_GROUP, body) == ok(GroupId="full")

    assert len(im.members_of("full")) == 20
    assert im.group("full") == GroupUsage("full", "Private", 20)


def test_create_group_at_groups_per_user_and_av_chatrooms(im: Im) -> None:
    im.import_users("alice", "bob")
    for _ in range(50):
        im.create_group("alice")

    owner_full = {"Owner_Account": "alice", "Type": "Public", "GroupId": "g51", "Name": "g51"}
    member_full = {**owner_full, "Owner_Account": "bob", "MemberList": members("alice")}
    alice_full = refused("groups_per_user", 50, "user", "alice", 50, 10037)
    assert im.call(CREATE_GROUP, owner_full) == fail(10037, alice_full)
    assert im.call(CREATE_GROUP, member_full) == fail(10037, alice_full)
    # AV chat rooms do not count toward groups_per_user, but there may be only 10 of them
    rooms = [im.create_group("alice", "bob", type="AVChatRoom") for _ in range(10)]
    eleventh = {**owner_full, "Type": "AVChatRoom", "GroupId": "av11"}
    too_many = refused("av_chatrooms", 10, "app", APP, 10, 10036)
    assert im.call(CREATE_GROUP, eleventh) == fail(10036, too_many)

    assert len(im.tables()["groups"]) == 60
    assert im.usage() == Usage(users=2, groups=60, av_chatrooms=10)
    assert im.user("alice") == (True, 0, 50)
    assert im.user("bob") == (True, 0, 0)
    assert all(im.members_of(room) == {"alice", "bob"} for room in rooms)


def test_add_group_member_results(im: Im) -> None:
    im.import_users("alice", "bob", "carol")
    group = im.create_group("alice", "bob")
    body = {"GroupId": group, "MemberList": members("bob", "carol", "ghost", "carol")}

    answer = im.call(ADD_MEMBERS, body)

    assert answer == ok(
        MemberList=[
            {"Member_Account": "bob", "Result": 2},
            {"Member_Account": "carol", "Result": 1},
            {"Member_Account": "ghost", "Result": 0},
        ]
    )
    assert im.members_of(group) == {"alice", "bob", "carol"}
    assert im.group(group) == GroupUsage(group, "Public", 3)
    assert im.user("carol") == (True, 0, 1)


def test_add_group_member_refuses_a_member_at_groups_per_user(im: Im) -> None:
    im.import_users("alice", "dave", "x")
    for _ in range(50):
        im.create_group("dave")
    group = im.create_group("alice")
    room = im.create_group("alice", type="AVChatRoom")

    answer = im.call(ADD_MEMBERS, {"GroupId": group, "MemberList": members("dave", "x")})
    av = im.call(ADD_MEMBERS, {"GroupId": room, "MemberList": members("dave")})

    assert answer == ok(
        MemberList=[
            {"Member_Account": "dave", "Result": 0, "ErrorCode": 10037},
            {"Member_Account": "x", "Result": 1},
        ]
    )
    assert av == ok(MemberList=[{"Member_Account": "dave", "Result": 1}])
    assert im.members_of(group) == {"alice", "x"}
    assert im.members_of(room) == {"alice", "dave"}
    assert im.user("dave") == (True, 0, 50)


def test_add_group_member_refuses_the_call_when_the_group_cannot_take_them_all(im: Im) -> None:
    im.import_users("alice", "busy", *CROWD)
    for _ in range(50):
        im.create_group("busy")
    group = im.create_group("alice", *CROWD[:17])
    newcomers = (*CROWD[17:], "busy")
    before = im.snapshot(newcomers, (group,))

    too_many = im.call(ADD_MEMBERS, {"GroupId": group, "MemberList": members(*CROWD[17:])})

    assert too_many == fail(10014, refused("group_members", 20, "group", group, 18, 10014))
    assert im.snapshot(newcomers, (group,)) == before
    # only the eligible ones need to fit: busy is refused on its own (10037)
    fits = im.call(ADD_MEMBERS, {"GroupId": group, "MemberList": members("busy", "m17", "m18")})
    assert fits == ok(
        MemberList=[
            {"Member_Account": "busy", "Result": 0, "ErrorCode": 10037},
            {"Member_Account": "m17", "Result": 1},
            {"Member_Account": "m18", "Result": 1},
        ]
    )
    assert im.members_of(group) == {"alice", *CROWD[:19]}
    assert im.group(group) == GroupUsage(group, "Public", 20)


def test_av_chatroom_membership_is_unlimited(im: Im) -> None:
    crowd = [f"v{i:02d}" for i in range(100)]
    im.import_users(*crowd)
    room = im.create_group("v00", type="AVChatRoom")

    answer = im.call(ADD_MEMBERS, {"GroupId": room, "MemberList": members(*crowd[1:])})

    assert answer == ok(MemberList=[{"Member_Account": u, "Result": 1} for u in crowd[1:]])
    assert len(im.members_of(room)) == 100
    assert im.group(room) == GroupUsage(room, "AVChatRoom", 100)
    assert im.user("v42") == (True, 0, 0)
    info = im.call(GROUP_INFO, {"GroupIdList": [room]})["GroupInfo"][0]
    assert (info["MemberNum"], info["MaxMemberNum"]) == (100, None)


def test_add_group_member_to_an_unknown_group(im: Im) -> None:
    im.import_users("alice")
    body = {"GroupId": "nope", "MemberList": members("alice")}

    assert im.call(ADD_MEMBERS, body) == fail(10010, f"group 'nope' does not exist in app '{APP}'")
    assert im.tables()["members"] == set()


def test_delete_group_member(im: Im) -> None:
    im.import_users("alice", "bob", "carol")
    group = im.create_group("alice", "bob", "carol")

    owner = im.call(DELETE_MEMBERS, {"GroupId": group, "MemberToDel_Account": ["bob", "alice"]})
    assert owner == fail(10004, "MemberToDel_Account: 'alice' owns the group and cannot be removed")
    assert im.members_of(group) == {"alice", "bob", "carol"}

    removed = im.call(DELETE_MEMBERS, {"GroupId": group, "MemberToDel_Account": ["bob", "bob"]})
    assert removed == ok()
    assert im.members_of(group) == {"alice", "carol"}
    assert im.group(group) == GroupUsage(group, "Public", 2)
    assert im.user("bob") == (True, 0, 0)
    unknown = im.call(DELETE_MEMBERS, {"GroupId": "nope", "MemberToDel_Account": ["bob"]})
    assert unknown == fail(10010, f"group 'nope' does not exist in app '{APP}'")


@pytest.mark.parametrize("type", ["Public", "AVChatRoom"])
def test_destroy_group_releases_its_members(im: Im, type: str) -> None:
    im.import_users("alice", "bob")
    group = im.create_group("alice", "bob", type=type)
    kept = im.create_group("bob")

    assert im.call(DESTROY_GROUP, {"GroupId": group}) == ok()

    assert im.tables()["groups"] == {(kept, "Public", "bob", kept)}
    assert im.members_of(group) == set()
    assert im.group(group) is None
    assert im.usage() == Usage(users=2, groups=1, av_chatrooms=0)
    assert im.user("alice") == (True, 0, 0)
    assert im.user("bob") == (True, 0, 1)
    again = im.call(DESTROY_GROUP, {"GroupId": group})
    assert again == fail(10010, f"group {group!r} does not exist in app '{APP}'")


def test_get_group_info_follows_the_plan(im: Im) -> None:
    crowd = [f"p{i:02d}" for i in range(30)]
    im.import_users(*crowd)
    group = im.create_group("p00", "p01", type="Work")
    other = im.create_group("p00", type="Meeting")

    def maxima() -> list[int | None]:
        answer = im.call(GROUP_INFO, {"GroupIdList": [group, other, group]})
        assert answer["ActionStatus"] == "OK"
        return [info["MaxMemberNum"] for info in answer["GroupInfo"]]

    assert maxima() == [20, 20]
    go_pro(im)
    assert maxima() == [200, 200]
    expansion = {"kind": "group_members_2000", "purchased_on": "2026-11-26", "months": 1}
    im.admin("POST", "/expansions", expansion, status=201)
    assert maxima() == [2000, 2000]
    im.admin("PUT", f"/groups/{group}/overrides/group_members", {"value": 30})
    assert maxima() == [30, 2000]

    # the limiter enforces what get_group_info shows
    fill = im.call(ADD_MEMBERS, {"GroupId": group, "MemberList": members(*crowd[2:])})
    assert [item["Result"] for item in fill["MemberList"]] == [1] * 28
    im.import_users("p30")
    over = im.call(ADD_MEMBERS, {"GroupId": group, "MemberList": members("p30")})
    assert over == fail(10014, refused("group_members", 30, "group", group, 30, 10014))
    info = im.call(GROUP_INFO, {"GroupIdList": [group]})["GroupInfo"][0]
    assert (info["Type"], info["MemberNum"], info["MaxMemberNum"]) == ("Private", 30, 30)


def test_get_group_info_of_an_unknown_group(im: Im) -> None:
    im.import_users("alice")
    group = im.create_group("alice")

    answer = im.call(GROUP_INFO, {"GroupIdList": ["nope", group]})

    missing = {
        "GroupId": "nope",
        "ErrorCode": 10010,
        "ErrorInfo": "the group does not exist",
        "Type": None,
        "Name": None,
        "Owner_Account": None,
        "MemberNum": None,
        "MaxMemberNum": None,
    }
    assert answer["ActionStatus"] == "OK"
    assert answer["GroupInfo"][0] == missing
    assert answer["GroupInfo"][1]["MemberNum"] == 1


def test_a_group_name_is_measured_in_bytes(im: Im) -> None:
    im.import_users("alice")
    body = {"Owner_Account": "alice", "Type": "Public", "Name": "群" * 11}

    answer = im.call(CREATE_GROUP, body)

    assert answer == fail(10004, "Name: must be 1 to 30 bytes, got 33")


def test_destroy_group_retried_after_an_outage_releases_the_group(im: Im) -> None:
    im.import_users("alice", "bob")
    group = im.create_group("alice", "bob")

    with down(im, "closed") as unreachable:
        assert unreachable.post(DESTROY_GROUP, {"GroupId": group}).status_code == 503
    retry = im.call(DESTROY_GROUP, {"GroupId": group})

    assert retry == ok()
    assert im.usage().groups == 0
    assert im.user("bob") == (True, 0, 0)


def test_delete_group_member_retried_after_an_outage_releases_the_membership(im: Im) -> None:
    im.import_users("alice", "bob")
    group = im.create_group("alice", "bob")
    body = {"GroupId": group, "MemberToDel_Account": ["bob"]}

    with down(im, "closed") as unreachable:
        assert unreachable.post(DELETE_MEMBERS, body).status_code == 503
    retry = im.call(DELETE_MEMBERS, body)

    assert retry == ok()
    assert im.user("bob") == (True, 0, 0)
