"""Every limit of every edition and expansion, at limit-1, at the limit and over it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from limiter import Outcome, Refused
from tests.conftest import APP, Enroll

BOUGHT = date(2026, 11, 20)


# Each filler and adder takes the engine, ``enroll`` (accounts first: the ids a relation names
# are made accounts as set-up) and its number. The users limit is filled through the engine.


def fill_users(engine: Any, enroll: Enroll, count: int) -> None:
    engine.register_users(APP, [f"u{i}" for i in range(count)])


def add_user(engine: Any, enroll: Enroll, n: int) -> int | None:
    item = engine.register_users(APP, [f"extra{n}"]).items[0]
    return None if item.outcome is Outcome.ADDED else item.refusal.code


def fill_friends(engine: Any, enroll: Enroll, count: int) -> None:
    peers = [f"p{i}" for i in range(count)]
    enroll(APP, "me", *peers)
    engine.add_friends(APP, "me", peers)


def add_friend(engine: Any, enroll: Enroll, n: int) -> int | None:
    enroll(APP, f"extra{n}")
    item = engine.add_friends(APP, "me", [f"extra{n}"]).items[0]
    return None if item.outcome is Outcome.ADDED else item.refusal.code


def fill_groups(engine: Any, enroll: Enroll, count: int) -> None:
    enroll(APP, "me")
    for i in range(count):
        engine.create_group(APP, f"g{i}", "Private", "me")


def join_group(engine: Any, enroll: Enroll, n: int) -> int | None:
    enroll(APP, "someone")
    engine.create_group(APP, f"extra{n}", "Public", "someone")
    item = engine.add_members(APP, f"extra{n}", ["me"]).items[0]
    return None if item.outcome is Outcome.ADDED else item.refusal.code


def fill_members(group_type: str) -> Callable[[Any, Enroll, int], None]:
    def fill(engine: Any, enroll: Enroll, count: int) -> None:
        members = [f"m{i}" for i in range(count - 1)]
        enroll(APP, "owner", *members)
        engine.create_group(APP, "big", group_type, "owner", members)

    return fill


def add_member(engine: Any, enroll: Enroll, n: int) -> int | None:
    enroll(APP, f"extra{n}")
    try:
        engine.add_members(APP, "big", [f"extra{n}"])
    except Refused as refused:
        return refused.code
    return None


def fill_rooms(engine: Any, enroll: Enroll, count: int) -> None:
    enroll(APP, "host")
    for i in range(count):
        engine.create_group(APP, f"av{i}", "AVChatRoom", "host")


def add_room(engine: Any, enroll: Enroll, n: int) -> int | None:
    try:
        engine.create_group(APP, f"extra{n}", "AVChatRoom", "host")
    except Refused as refused:
        return refused.code
    return None


# (edition, expansions bought, fill to `count`, add one more -> refusal code or None, limit, code)
CASES = [
    ("trial", (), fill_users, add_user, 100, 70398),
    ("trial", (), fill_friends, add_friend, 20, 30010),
    ("trial", (), fill_groups, join_group, 50, 10037),
    ("trial", (), fill_members("Private"), add_member, 20, 10014),
    ("trial", (), fill_members("Public"), add_member, 20, 10014),
    ("trial", (), fill_members("ChatRoom"), add_member, 20, 10014),
    ("trial", (), fill_rooms, add_room, 10, 10036),
    ("pro", (), fill_friends, add_friend, 3000, 30010),
    ("pro", (), fill_groups, join_group, 200, 10037),
    ("pro", ("groups_per_user_400",), fill_groups, join_group, 400, 10037),
    ("pro", ("groups_per_user_700",), fill_groups, join_group, 700, 10037),
    ("pro", ("groups_per_user_1000", "groups_per_user_400"), fill_groups, join_group, 1000, 10037),
    ("pro", (), fill_members("Public"), add_member, 200, 10014),
    ("pro", ("group_members_2000",), fill_members("Private"), add_member, 2000, 10014),
    ("pro", ("group_members_6000",), fill_members("ChatRoom"), add_member, 6000, 10014),
    ("pro", (), fill_rooms, add_room, 50, 10036),
]


@pytest.mark.parametrize(
    ("edition", "expansions", "fill", "add_one", "limit", "code"),
    CASES,
    ids=[f"{c[0]}-{'+'.join(c[1]) or 'base'}-{c[2].__name__}-{c[4]}" for c in CASES],
)
def test_limit_minus_one_at_limit_and_over(
    engine, enroll, edition, expansions, fill, add_one, limit, code
):
    if edition == "pro":
        engine.set_edition(APP, "pro", purchased_on=BOUGHT)
    for kind in expansions:
        engine.add_expansion(APP, kind, BOUGHT)
    fill(engine, enroll, limit - 1)
    assert add_one(engine, enroll, 1) is None  # from limit-1 to the limit
    assert add_one(engine, enroll, 2) == code  # over it


@pytest.mark.parametrize(
    ("expansions", "fill", "add_one", "beyond"),
    [
        ((), fill_users, add_user, 150),
        (("av_chatrooms_unlimited",), fill_rooms, add_room, 60),
        ((), fill_members("AVChatRoom"), add_member, 500),
    ],
    ids=["users", "av_chatrooms_unlimited", "av_members"],
)
def test_unlimited_on_pro(engine, enroll, expansions, fill, add_one, beyond):
    engine.set_edition(APP, "pro", purchased_on=BOUGHT)
    for kind in expansions:
        engine.add_expansion(APP, kind, BOUGHT)
    fill(engine, enroll, beyond)
    assert add_one(engine, enroll, 1) is None
