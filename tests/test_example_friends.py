"""The example's ``sns`` commands: friend adds per peer (both ways or single, either side's list
full) and friend deletes, and what they leave in SQLite and in the limiter."""

from __future__ import annotations

from typing import Any

import pytest

from tests.example_support import FRIEND_ADD, FRIEND_DELETE, Im, fail, ok, peers, refused


def friend(peer: str, code: int = 0, info: str = "") -> dict[str, Any]:
    """One ``ResultItem`` of a friend command."""
    return {"To_Account": peer, "ResultCode": code, "ResultInfo": info}


def test_friend_add_both_ways_and_single(im: Im) -> None:
    im.import_users("alice", "bob", "carol")

    both = {"From_Account": "alice", "AddFriendItem": peers("bob"), "AddType": "Add_Type_Both"}
    single = {
        "From_Account": "alice",
        "AddFriendItem": peers("carol"),
        "AddType": "Add_Type_Single",
    }
    assert im.call(FRIEND_ADD, both) == ok(ResultItem=[friend("bob")], Fail_Account=[])
    assert im.call(FRIEND_ADD, single) == ok(ResultItem=[friend("carol")], Fail_Account=[])

    assert im.friend_entries() == {("alice", "bob"), ("bob", "alice"), ("alice", "carol")}
    assert [im.user(user)[1] for user in ("alice", "bob", "carol")] == [2, 1, 0]


def test_friend_add_answers_per_peer(im: Im) -> None:
    im.import_users("alice", "bob", "carol", "dave")
    im.befriend("alice", "bob")
    im.befriend("carol", "alice", both=False)
    before = im.friend_entries()

    body = {
        "From_Account": "alice",
        "AddFriendItem": peers("bob", "alice", "ghost", "carol", "dave", "dave"),
        "AddType": "Add_Type_Both",
    }
    answer = im.call(FRIEND_ADD, body)

    assert answer == ok(
        ResultItem=[
            friend("bob", 30001, "already a friend: nothing changed"),
            friend("alice", 30001, "cannot add yourself"),
            friend("ghost", 30001, "the account was not imported"),
            friend("carol"),
            friend("dave"),
        ],
        Fail_Account=["bob", "alice", "ghost"],
    )
    # carol already had alice: only alice's side was missing; dave is new both ways
    added = {("alice", "carol"), ("alice", "dave"), ("dave", "alice")}
    assert im.friend_entries() == before | added
    assert [im.user(user)[1] for user in ("alice", "bob", "carol", "dave")] == [3, 1, 1, 1]


def test_friend_add_from_an_account_never_imported(im: Im) -> None:
    im.import_users("bob")
    body = {"From_Account": "ghost", "AddFriendItem": peers("bob")}

    answer = im.call(FRIEND_ADD, body)

    assert answer == fail(30001, "not imported: 'ghost'", ResultItem=[], Fail_Account=[])
    assert im.friend_entries() == set()
    assert im.user("bob") == (True, 0, 0)


def test_friend_lists_full_on_either_side(im: Im) -> None:
    crowd = [f"f{i:02d}" for i in range(20)]
    im.import_users("alice", "bob", "carol", *crowd)
    im.befriend("alice", *crowd)
    before = im.friend_entries()

    mine_full = im.call(FRIEND_ADD, {"From_Account": "alice", "AddFriendItem": peers("carol")})
    theirs_full = im.call(
        FRIEND_ADD, {"From_Account": "carol", "AddFriendItem": peers("alice", "bob")}
    )
    one_way = {
        "From_Account": "carol",
        "AddFriendItem": peers("alice"),
        "AddType": "Add_Type_Single",
    }
    single = im.call(FRIEND_ADD, one_way)

    alice_full = refused("friends", 20, "user", "alice", 20, 30010)
    assert mine_full == ok(
        ResultItem=[friend("carol", 30010, alice_full)],
        Fail_Account=["carol"],
    )
    peer_full = refused("friends", 20, "user", "alice", 20, 30014)
    assert theirs_full == ok(
        ResultItem=[
            friend("alice", 30014, peer_full),
            friend("bob"),
        ],
        Fail_Account=["alice"],
    )
    # a single-way add only fills the requester's list: alice's being full does not matter
    assert single["ResultItem"] == [friend("alice")]
    added = {("carol", "bob"), ("bob", "carol"), ("carol", "alice")}
    assert im.friend_entries() == before | added
    assert im.user("alice")[1] == 20 and im.user("carol")[1] == 2


@pytest.mark.parametrize(
    ("delete_type", "left", "bobs_friends"),
    [
        ("Delete_Type_Both", {("alice", "carol"), ("carol", "alice")}, 0),
        ("Delete_Type_Single", {("bob", "alice"), ("alice", "carol"), ("carol", "alice")}, 1),
    ],
)
def test_friend_delete(
    im: Im, delete_type: str, left: set[tuple[str, str]], bobs_friends: int
) -> None:
    im.import_users("alice", "bob", "carol", "dave")
    im.befriend("alice", "bob", "carol")
    body = {"From_Account": "alice", "To_Account": ["bob", "dave"], "DeleteType": delete_type}

    answer = im.call(FRIEND_DELETE, body)

    assert answer == ok(
        ResultItem=[
            friend("bob"),
            friend("dave", 30001, "not a friend: nothing changed"),
        ],
        Fail_Account=["dave"],
    )
    assert im.friend_entries() == left
    assert im.user("alice")[1] == 1
    assert im.user("bob")[1] == bobs_friends
