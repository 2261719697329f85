"""What the example leaves in SQLite and in the limiter when an addition cannot complete: a
failed database write, a Redis outage (503 under ``closed``, through under ``open``), a
lapsed package, a batch the limiter refuses, and a removal that reached SQLite only."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from limiter import AsyncLimiter, AsyncStore, Settings, Usage
from limiter.testing import ManualClock
from tests.conftest import APP, Backend, at
from tests.example_support import (
    ACCOUNT_DELETE,
    ADD_MEMBERS,
    CREATE_GROUP,
    DELETE_MEMBERS,
    DESTROY_GROUP,
    FRIEND_ADD,
    FRIEND_DELETE,
    IMPORT,
    MULTI_IMPORT,
    STORE_DOWN,
    TOKEN,
    Im,
    Tables,
    down,
    fail,
    go_pro,
    members,
    ok,
    peers,
    service_of,
    serving,
)

# The hosted IM's code per service for an internal error (retry).
INTERNAL = {"im_open_login_svc": 70500, "sns": 30006, "group_open_http_svc": 10002}
DB_FAILED = "the backend's database failed; nothing was changed; retry"


# -- a failed database write releases the reservation ----------------------------------------------


@dataclass(frozen=True)
class Change:
    """An addition, the table whose insert it needs, and what it adds to SQLite."""

    command: str
    table: str
    body: dict[str, Any]
    adds: Tables


CHANGES = {
    "account_import": Change(IMPORT, "accounts", {"UserID": "dave"}, {"accounts": {("dave",)}}),
    "multiaccount_import": Change(
        MULTI_IMPORT,
        "accounts",
        {"Accounts": ["dave", "erin", "alice"]},
        {"accounts": {("dave",), ("erin",)}},
    ),
    "friend_add": Change(
        FRIEND_ADD,
        "friends",
        {
            "From_Account": "alice",
            "AddFriendItem": peers("bob", "carol"),
            "AddType": "Add_Type_Both",
        },
        {"friends": {("alice", "bob"), ("bob", "alice"), ("alice", "carol")}},
    ),
    "create_group": Change(
        CREATE_GROUP,
        "groups",
        {
            "Owner_Account": "alice",
            "Type": "Work",
            "GroupId": "g2",
            "Name": "g2",
            "MemberList": members("bob"),
        },
        {"groups": {("g2", "Private", "alice", "g2")}, "members": {("g2", "alice"), ("g2", "bob")}},
    ),
    "add_group_member": Change(
        ADD_MEMBERS,
        "members",
        {"GroupId": "g1", "MemberList": members("bob", "carol")},
        {"members": {("g1", "bob"), ("g1", "carol")}},
    ),
}
PEOPLE = ("alice", "bob", "carol", "dave", "erin")
GROUPS = ("g1", "g2")


def seed(im: Im) -> None:
    """What every change starts from; carol already has alice (single way)."""
    im.import_users("alice", "bob", "carol")
    im.befriend("carol", "alice", both=False)
    im.create_group("alice", group="g1")


def plus(tables: Tables, adds: Tables) -> Tables:
    return {name: rows | adds.get(name, set()) for name, rows in tables.items()}


@contextmanager
def failing_inserts(db_path: Path, table: str) -> Iterator[None]:
    """Every insert into ``table`` fails, as a full disk would make it, until the block ends."""
    with closing(sqlite3.connect(db_path, isolation_level=None)) as db:
        db.execute(
            f"CREATE TRIGGER boom BEFORE INSERT ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    try:
        yield
    finally:
        with closing(sqlite3.connect(db_path, isolation_level=None)) as db:
            db.execute("DROP TRIGGER boom")


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_a_failed_write_releases_what_was_reserved(im: Im, change: Change) -> None:
    seed(im)
    before = im.snapshot(PEOPLE, GROUPS)

    with failing_inserts(im.db_path, change.table):
        answer = im.post(change.command, change.body)

    assert answer.status_code == 503
    assert answer.json() == fail(INTERNAL[service_of(change.command)], DB_FAILED)
    assert im.snapshot(PEOPLE, GROUPS) == before
    # the retry goes through: nothing was left half done
    assert im.call(change.command, change.body)["ActionStatus"] == "OK"
    assert im.tables() == plus(before[0], change.adds)


# -- Redis outage ----------------------------------------------------------------------------------


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_an_outage_refuses_additions_with_503(im: Im, change: Change) -> None:
    seed(im)
    before = im.snapshot(PEOPLE, GROUPS)

    with down(im, "closed") as unreachable:
        answer = unreachable.post(change.command, change.body)

    assert answer.status_code == 503
    assert answer.json() == fail(INTERNAL[service_of(change.command)], STORE_DOWN)
    assert im.snapshot(PEOPLE, GROUPS) == before


@pytest.mark.parametrize(
    "change",
    [pytest.param(change, id=name) for name, change in CHANGES.items()],
)
def test_an_outage_with_the_open_policy_lets_additions_through(im: Im, change: Change) -> None:
    seed(im)
    before = im.tables()

    with down(im, "open") as unreachable:
        answer = unreachable.call(change.command, change.body)

    assert answer["ActionStatus"] == "OK"
    assert all(item.get("ResultCode", 0) == 0 for item in answer.get("ResultItem", []))
    assert im.tables() == plus(before, change.adds)


# -- a lapsed package ------------------------------------------------------------------------------

SUSPENDED_ADDITIONS = [
    (IMPORT, {"UserID": "erin"}),
    (MULTI_IMPORT, {"Accounts": ["erin"]}),
    (FRIEND_ADD, {"From_Account": "alice", "AddFriendItem": peers("carol")}),
    (CREATE_GROUP, {"Owner_Account": "alice", "Type": "Public", "GroupId": "g2", "Name": "g2"}),
    (ADD_MEMBERS, {"GroupId": "g1", "MemberList": members("carol")}),
]
SUSPENDED_REMOVALS = [
    (FRIEND_DELETE, {"From_Account": "alice", "To_Account": ["bob"]}),
    (DELETE_MEMBERS, {"GroupId": "g1", "MemberToDel_Account": ["bob"]}),
    (DESTROY_GROUP, {"GroupId": "g1"}),
    (ACCOUNT_DELETE, {"DeleteItem": [{"UserID": "alice"}]}),
]


def test_a_lapsed_package_refuses_additions_and_allows_removals(im: Im) -> None:
    go_pro(im)  # paid through 2026-12-25; grace until 2026-12-27 00:00
    im.import_users("alice", "bob", "carol")
    im.befriend("alice", "bob")
    im.create_group("alice", "bob", group="g1")

    im.clock.set(at(2026, 12, 26, 23, 59, 59))
    assert im.admin("GET", "")["status"] == "grace"
    assert im.call(IMPORT, {"UserID": "dave"}) == ok()

    im.clock.set(at(2026, 12, 27, 0, 0, 1))
    assert im.admin("GET", "")["status"] == "suspended"
    before = im.tables()
    lapsed = (
        f"app {APP!r}: its pro package lapsed or has not started; additions are refused "
        "until it is renewed (IM code 60020)"
    )
    for command, body in SUSPENDED_ADDITIONS:
        assert im.call(command, body) == fail(60020, lapsed), command
    assert im.tables() == before

    for command, body in SUSPENDED_REMOVALS:
        answer = im.call(command, body)
        assert answer["ActionStatus"] == "OK", (command, answer)
    assert im.tables() == {
        "accounts": {("bob",), ("carol",), ("dave",)},
        "friends": set(),
        "groups": set(),
        "members": set(),
    }
    assert im.usage() == Usage(users=3, groups=0, av_chatrooms=0)
    assert im.user("bob") == (True, 0, 0)


# -- a removal that reached SQLite only, a removal the limiter would refuse ------------------------


def test_an_addition_of_what_is_already_there_repairs_sqlite(im: Im) -> None:
    # A removal that reached SQLite but not the limiter (an outage, the client never retried).
    im.import_users("alice", "bob")
    group = im.create_group("alice", "bob")
    im.befriend("alice", "bob")
    with closing(sqlite3.connect(im.db_path, isolation_level=None)) as db:
        db.execute("DELETE FROM members WHERE user_id = 'bob'")
        db.execute("DELETE FROM friends")

    joined = im.call(ADD_MEMBERS, {"GroupId": group, "MemberList": members("bob")})
    befriended = im.call(FRIEND_ADD, {"From_Account": "alice", "AddFriendItem": peers("bob")})

    assert joined == ok(MemberList=[{"Member_Account": "bob", "Result": 2}])
    assert befriended["ResultItem"][0]["ResultCode"] == 30001  # already: nothing counted
    assert im.rows("SELECT user_id FROM members WHERE group_id = ?", group) == {
        ("alice",),
        ("bob",),
    }
    assert im.rows("SELECT user_id, friend_id FROM friends") == {("alice", "bob"), ("bob", "alice")}


def test_a_removal_the_limiter_would_refuse_changes_nothing(
    backend: Backend, clock: ManualClock, tmp_path: Path
) -> None:
    settings = Settings(
        redis_url="memory://unused",
        cache_seconds=0,
        admin_tokens={"ops": SecretStr(TOKEN)},
        max_batch=2,
    )
    engine = AsyncLimiter(AsyncStore(backend.async_client()), settings=settings, clock=clock)
    with serving(engine, tmp_path / "im.sqlite3", clock) as im:
        im.import_users("a", "b")
        im.import_users("c")
        group = im.create_group("a", "b")
        before = im.tables()

        answers = [
            im.call(DELETE_MEMBERS, {"GroupId": group, "MemberToDel_Account": ["b", "c", "x"]}),
            im.call(FRIEND_DELETE, {"From_Account": "a", "To_Account": ["b", "c", "x"]}),
            im.call(ACCOUNT_DELETE, {"DeleteItem": [{"UserID": u} for u in ("a", "b", "c")]}),
        ]

        assert [answer["ErrorInfo"] for answer in answers] == [
            "MemberToDel_Account: at most 2 ids in one call, got 3",
            "To_Account: at most 2 ids in one call, got 3",
            "DeleteItem: at most 2 ids in one call, got 3",
        ]
        assert im.tables() == before
