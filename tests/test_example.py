"""The example IM backend (``examples/im_backend``) in process, on fakeredis and the real server:
every ``/v4`` command's IM-shaped answer, and what it leaves in SQLite and in the limiter.

One fixture (``im``) runs the app with its lifespan on an engine over the ``backend`` fixture
and a fresh SQLite file. Nothing is mocked: a failing database is a real SQLite trigger, an
outage is an engine on a port where no Redis listens.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from examples.im_backend import reconcile
from examples.im_backend.app import create_app
from limiter import AsyncLimiter, AsyncStore, GroupUsage, Limiter, Settings, SyncStore, Usage
from limiter.testing import ManualClock
from tests.conftest import APP, Backend, at

TOKEN = "ops-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SETTINGS = Settings(
    redis_url="memory://unused", cache_seconds=0, admin_tokens={"ops": SecretStr(TOKEN)}
)
OTHER_APP = "1400000002"
NO_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1

IMPORT = "im_open_login_svc/account_import"
MULTI_IMPORT = "im_open_login_svc/multiaccount_import"
ACCOUNT_DELETE = "im_open_login_svc/account_delete"
FRIEND_ADD = "sns/friend_add"
FRIEND_DELETE = "sns/friend_delete"
CREATE_GROUP = "group_open_http_svc/create_group"
ADD_MEMBERS = "group_open_http_svc/add_group_member"
DELETE_MEMBERS = "group_open_http_svc/delete_group_member"
DESTROY_GROUP = "group_open_http_svc/destroy_group"
GROUP_INFO = "group_open_http_svc/get_group_info"
SEND = "openim/sendmsg"
ROAM = "openim/admin_getroammsg"
COMMANDS = (
    IMPORT,
    MULTI_IMPORT,
    ACCOUNT_DELETE,
    FRIEND_ADD,
    FRIEND_DELETE,
    CREATE_GROUP,
    ADD_MEMBERS,
    DELETE_MEMBERS,
    DESTROY_GROUP,
    GROUP_INFO,
    SEND,
    ROAM,
)

# The hosted IM's codes per service: a bad request, and an internal error (retry).
INVALID = {"im_open_login_svc": 70402, "sns": 30001, "group_open_http_svc": 10004, "openim": 90001}
INTERNAL = {"im_open_login_svc": 70500, "sns": 30006, "group_open_http_svc": 10002}
DB_FAILED = "the backend's database failed; nothing was changed; retry"
STORE_DOWN = "the limit store is unavailable; retry (nothing was added; a removal completes)"
END_OF_TIME = 2**32 - 1
GROUP_ID = re.compile(r"@TGS#[A-Z0-9]{10}")
AV_GROUP_ID = re.compile(r"@TGS#a[A-Z0-9]{10}")

Tables = dict[str, set[tuple[Any, ...]]]


def service_of(command: str) -> str:
    return command.split("/")[0]


def ok(**fields: Any) -> dict[str, Any]:
    return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", **fields}


def fail(code: int, info: str, **fields: Any) -> dict[str, Any]:
    return {"ActionStatus": "FAIL", "ErrorCode": code, "ErrorInfo": info, **fields}


def refused(limit: str, cap: int | str, scope: str, who: str, current: int, code: int) -> str:
    """The limiter's description of a refusal (``Refusal.describe``)."""
    return (
        f"{limit} limit {cap} refuses the addition for {scope} {who!r} "
        f"(current {current}; IM code {code})"
    )


def friend(peer: str, code: int = 0, info: str = "") -> dict[str, Any]:
    """One ``ResultItem`` of a friend command."""
    return {"To_Account": peer, "ResultCode": code, "ResultInfo": info}


def peers(*users: str) -> list[dict[str, str]]:
    return [{"To_Account": user} for user in users]


def members(*users: str) -> list[dict[str, str]]:
    return [{"Member_Account": user} for user in users]


def roam(a: str, b: str, **fields: Any) -> dict[str, Any]:
    """An ``admin_getroammsg`` body for the pair, everything since the epoch by default."""
    return {
        "Operator_Account": a,
        "Peer_Account": b,
        "MaxCnt": 10,
        "MinTime": 0,
        "MaxTime": END_OF_TIME,
        **fields,
    }


@dataclass
class Im:
    """The running example: HTTP helpers, seeding through the API, and readers of its state
    (SQLite directly; the limiter through the app's own engine on the client's event loop)."""

    http: TestClient
    engine: AsyncLimiter
    db_path: Path
    clock: ManualClock
    groups_made: int = 0

    # -- HTTP ---------------------------------------------------------------------------------

    def post(
        self,
        command: str,
        body: Any = None,
        *,
        query: str = f"sdkappid={APP}",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST a command; ``body`` bytes are sent as they are, anything else as JSON."""
        url = f"/v4/{command}?{query}"
        if isinstance(body, bytes):
            return self.http.post(url, content=body, headers=headers)
        return self.http.post(url, json=body, headers=headers)

    def call(self, command: str, body: Any, **options: Any) -> dict[str, Any]:
        """The answer of a command, which must be HTTP 200."""
        answer = self.post(command, body, **options)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def admin(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        answer = self.http.request(method, f"/admin/apps/{APP}{path}", json=body, headers=AUTH)
        assert answer.status_code == status, answer.text
        return answer.json() if answer.content else None

    # -- seeding through the API --------------------------------------------------------------

    def import_users(self, *users: str) -> None:
        for start in range(0, len(users), 100):
            chunk = list(users[start : start + 100])
            answer = self.call(MULTI_IMPORT, {"Accounts": chunk})
            assert answer == ok(FailAccounts=[], FailReasons=[])

    def befriend(self, user: str, *others: str, both: bool = True) -> None:
        add_type = "Add_Type_Both" if both else "Add_Type_Single"
        body = {"From_Account": user, "AddFriendItem": peers(*others), "AddType": add_type}
        answer = self.call(FRIEND_ADD, body)
        assert [item["ResultCode"] for item in answer["ResultItem"]] == [0] * len(others)

    def create_group(
        self, owner: str, *others: str, type: str = "Public", group: str | None = None
    ) -> str:
        if group is None:
            self.groups_made += 1
            group = f"g{self.groups_made:03d}"
        body = {
            "Owner_Account": owner,
            "Type": type,
            "GroupId": group,
            "Name": group,
            "MemberList": members(*others),
        }
        assert self.call(CREATE_GROUP, body) == ok(GroupId=group)
        return group

    # -- state ----------------------------------------------------------------------------------

    def rows(self, sql: str, *params: Any) -> set[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.db_path)) as db:
            return set(db.execute(sql, params).fetchall())

    def tables(self, app: str = APP) -> Tables:
        """Everything the limiter guards in SQLite, without the app column."""
        return {
            "accounts": self.rows("SELECT user_id FROM accounts WHERE app = ?", app),
            "friends": self.rows("SELECT user_id, friend_id FROM friends WHERE app = ?", app),
            "groups": self.rows(
                "SELECT group_id, type, owner, name FROM groups WHERE app = ?", app
            ),
            "members": self.rows("SELECT group_id, user_id FROM members WHERE app = ?", app),
        }

    def accounts(self) -> set[str]:
        return {user for (user,) in self.tables()["accounts"]}

    def friend_entries(self) -> set[tuple[Any, ...]]:
        return self.tables()["friends"]

    def members_of(self, group: str) -> set[str]:
        return {user for g, user in self.tables()["members"] if g == group}

    def usage(self, app: str = APP) -> Usage:
        portal = self.http.portal
        assert portal is not None
        return portal.call(self.engine.usage, app)

    def user(self, user: str, app: str = APP) -> tuple[bool, int, int]:
        """(registered, friends, groups) of one user in the limiter."""
        portal = self.http.portal
        assert portal is not None
        found = portal.call(self.engine.user_usage, app, user)
        return found.registered, found.friends, found.groups

    def group(self, group: str, app: str = APP) -> GroupUsage | None:
        portal = self.http.portal
        assert portal is not None
        return portal.call(self.engine.group_usage, app, group)

    def snapshot(self, users: tuple[str, ...], groups: tuple[str, ...]) -> tuple[Any, ...]:
        """SQLite and the limiter's counts of these users and groups."""
        return (
            self.tables(),
            self.usage(),
            {user: self.user(user) for user in users},
            {group: self.group(group) for group in groups},
        )


@contextmanager
def serving(engine: AsyncLimiter, db_path: Path, clock: ManualClock) -> Iterator[Im]:
    """The example on ``engine`` and the SQLite file at ``db_path``, lifespan running."""
    with TestClient(create_app(limiter=engine, db_path=db_path)) as http:
        yield Im(http, engine, db_path, clock)
        assert http.portal is not None
        http.portal.call(engine.aclose)


@pytest.fixture
def im(backend: Backend, clock: ManualClock, tmp_path: Path) -> Iterator[Im]:
    engine = AsyncLimiter(AsyncStore(backend.async_client()), settings=SETTINGS, clock=clock)
    with serving(engine, tmp_path / "im.sqlite3", clock) as running:
        yield running


@contextmanager
def down(im: Im, outage: Literal["closed", "open"]) -> Iterator[Im]:
    """A second instance of the example on the same SQLite file whose Redis cannot be reached."""
    settings = Settings(
        redis_url=NO_REDIS, cache_seconds=0, admin_tokens={"ops": SecretStr(TOKEN)}, outage=outage
    )
    engine = AsyncLimiter.from_settings(settings, clock=im.clock)
    with serving(engine, im.db_path, im.clock) as running:
        yield running


def go_pro(im: Im) -> None:
    body = {"edition": "pro", "purchased_on": "2026-11-26", "months": 1}
    assert im.admin("PUT", "/edition", body)["status"] == "active"


# -- accounts --------------------------------------------------------------------------------------


def test_imports_stop_at_the_trial_cap_per_account(im: Im) -> None:
    im.import_users(*(f"u{i:02d}" for i in range(98)))

    answer = im.call(MULTI_IMPORT, {"Accounts": ["a", "b", "a", "c", "d", "c"]})

    full = refused("users", 100, "app", APP, 100, 70398)
    assert answer == ok(
        FailAccounts=["c", "d"],
        FailReasons=[
            {"UserID": "c", "ErrorCode": 70398, "ErrorInfo": full},
            {"UserID": "d", "ErrorCode": 70398, "ErrorInfo": full},
        ],
    )
    assert len(im.accounts()) == 100 and {"a", "b"} <= im.accounts()
    assert not {"c", "d"} & im.accounts()
    assert im.usage().users == 100
    # the decorator path refuses the 101st whole; an account already there is no addition
    assert im.call(IMPORT, {"UserID": "c"}) == fail(70398, full)
    assert im.call(IMPORT, {"UserID": "a"}) == ok()
    assert "c" not in im.accounts() and len(im.accounts()) == 100
    assert im.usage().users == 100


@pytest.mark.parametrize(
    ("command", "body", "answer"),
    [
        pytest.param(IMPORT, {"UserID": "alice"}, ok(), id="account_import"),
        pytest.param(
            MULTI_IMPORT,
            {"Accounts": ["alice", "bob", "alice"]},
            ok(FailAccounts=[], FailReasons=[]),
            id="multiaccount_import",
        ),
    ],
)
def test_importing_existing_accounts_changes_nothing(
    im: Im, command: str, body: dict[str, Any], answer: dict[str, Any]
) -> None:
    im.import_users("alice", "bob")
    im.befriend("alice", "bob")
    before = im.snapshot(("alice", "bob"), ())

    assert im.call(command, body) == answer

    assert im.snapshot(("alice", "bob"), ()) == before
    assert im.usage().users == 2


def test_account_import_adds_one_account(im: Im) -> None:
    assert im.call(IMPORT, {"UserID": "alice", "Nick": "Alice"}) == ok()

    assert im.accounts() == {"alice"}
    assert im.user("alice") == (True, 0, 0)
    assert im.usage() == Usage(users=1, groups=0, av_chatrooms=0)


def test_account_delete_frees_friends_and_memberships(im: Im) -> None:
    im.import_users("alice", "bob", "carol")
    im.befriend("alice", "bob")
    im.befriend("carol", "alice", both=False)
    shared = im.create_group("bob", "alice", "carol")
    owned = im.create_group("alice", "bob")

    answer = im.call(
        ACCOUNT_DELETE,
        {"DeleteItem": [{"UserID": "alice"}, {"UserID": "ghost"}, {"UserID": "alice"}]},
    )

    assert answer == ok(
        ResultItem=[
            {"UserID": "alice", "ResultCode": 0, "ResultInfo": ""},
            {"UserID": "ghost", "ResultCode": 70107, "ResultInfo": "the account does not exist"},
        ]
    )
    tables = im.tables()
    assert tables["accounts"] == {("bob",), ("carol",)}
    assert tables["friends"] == set()
    assert tables["members"] == {(shared, "bob"), (shared, "carol"), (owned, "bob")}
    assert im.user("alice") == (False, 0, 0)
    assert im.user("bob") == (True, 0, 2)
    assert im.user("carol") == (True, 0, 1)
    assert im.group(shared) == GroupUsage(shared, "Public", 2)
    assert im.usage().users == 2


# -- friends ---------------------------------------------------------------------------------------


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


# -- groups ----------------------------------------------------------------------------------------


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


# -- bad input -------------------------------------------------------------------------------------

TOO_DEEP = 100_000


@pytest.mark.parametrize(
    ("command", "body", "info"),
    [
        pytest.param(IMPORT, b"UserID=alice", "body: not valid JSON", id="not JSON"),
        pytest.param(
            IMPORT, b"[1, 2]", "body: Input should be a valid dictionary", id="JSON array"
        ),
        pytest.param(IMPORT, b"", "body: Field required", id="empty body"),
        pytest.param(IMPORT, {}, "UserID: Field required", id="missing field"),
        pytest.param(IMPORT, {"UserID": 5}, "UserID: Input should be a valid string", id="int id"),
        pytest.param(
            MULTI_IMPORT,
            {"Accounts": "alice"},
            "Accounts: Input should be a valid list",
            id="string for a list",
        ),
        pytest.param(
            IMPORT, {"UserID": "x" * 33}, "UserID: must be 1 to 32 bytes, got 33", id="33 bytes"
        ),
        pytest.param(
            IMPORT,
            {"UserID": "\u4e2d" * 11},
            "UserID: must be 1 to 32 bytes, got 33",
            id="33 bytes in 11 characters",
        ),
        pytest.param(IMPORT, {"UserID": ""}, "UserID: must be 1 to 32 bytes, got 0", id="empty id"),
        pytest.param(
            IMPORT,
            {"UserID": "a\nb"},
            "UserID: must not contain control characters",
            id="control character",
        ),
        pytest.param(
            FRIEND_ADD,
            {"From_Account": "alice", "AddFriendItem": peers("bob\x00")},
            "AddFriendItem.0.To_Account: must not contain control characters",
            id="nested id",
        ),
        pytest.param(
            FRIEND_ADD,
            {"From_Account": "alice", "AddFriendItem": peers("bob"), "AddType": "Add_Type_Up"},
            "AddType: Input should be 'Add_Type_Both' or 'Add_Type_Single'",
            id="unknown AddType",
        ),
        pytest.param(
            CREATE_GROUP,
            {"Owner_Account": "alice", "Type": "Public", "Name": "g", "GroupId": "g" * 49},
            "GroupId: must be 1 to 48 bytes, got 49",
            id="49-byte GroupId",
        ),
        pytest.param(
            CREATE_GROUP,
            {"Owner_Account": "alice", "Type": "Public"},
            "Name: Field required",
            id="no Name",
        ),
        pytest.param(
            ADD_MEMBERS,
            {"GroupId": "g" * 49, "MemberList": members("bob")},
            "GroupId: must be 1 to 48 bytes, got 49",
            id="49-byte GroupId to add to",
        ),
        pytest.param(
            GROUP_INFO,
            {"GroupIdList": ["g1\x7f"]},
            "GroupIdList.0: must not contain control characters",
            id="control character in a GroupId",
        ),
        pytest.param(
            MULTI_IMPORT,
            {"Accounts": [f"u{i}" for i in range(101)]},
            "Accounts: List should have at most 100 items after validation, not 101",
            id="101 accounts",
        ),
        pytest.param(
            FRIEND_ADD,
            {"From_Account": "alice", "AddFriendItem": peers(*(f"u{i}" for i in range(101)))},
            "AddFriendItem: List should have at most 100 items after validation, not 101",
            id="101 peers",
        ),
        pytest.param(
            ADD_MEMBERS,
            {"GroupId": "g1", "MemberList": members(*(f"u{i}" for i in range(301)))},
            "MemberList: List should have at most 300 items after validation, not 301",
            id="301 members",
        ),
        pytest.param(
            SEND,
            {"From_Account": "alice", "To_Account": "bob", "MsgRandom": -1, "MsgBody": []},
            "MsgRandom: Input should be greater than or equal to 0",
            id="negative MsgRandom",
        ),
        pytest.param(
            ROAM,
            roam("alice", "bob", MinTime="yesterday"),
            "MinTime: must be Unix seconds or an ISO 8601 instant, not 'yesterday'",
            id="MinTime not a time",
        ),
        pytest.param(
            ROAM,
            roam("alice", "bob", LastMsgKey="zz"),
            "LastMsgKey: not a key this backend gave out: 'zz'",
            id="LastMsgKey not ours",
        ),
        pytest.param(IMPORT, b"[" * TOO_DEEP + b"]" * TOO_DEEP, "body", id="deep array"),
        pytest.param(
            CREATE_GROUP,
            b'{"a":' * TOO_DEEP + b"1" + b"}" * TOO_DEEP,
            "body",
            id="deep object",
        ),
        pytest.param(IMPORT, b'{"UserID": "\xff\xfe"}', "body", id="not UTF-8"),
    ],
)
def test_bad_input_is_refused_in_the_im_shape(im: Im, command: str, body: Any, info: str) -> None:
    im.import_users("alice", "bob")
    im.create_group("alice", group="g1")
    before = im.snapshot(("alice", "bob"), ("g1",))

    answer = im.post(command, body)

    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert (found["ActionStatus"], found["ErrorCode"]) == ("FAIL", INVALID[service_of(command)])
    assert found["ErrorInfo"].startswith(info), found["ErrorInfo"]
    assert im.snapshot(("alice", "bob"), ("g1",)) == before


@pytest.mark.parametrize("query", ["", "sdkappid=", "sdkappid=%7Bx%7D", "SdkAppid=1400000001"])
def test_a_request_naming_no_valid_app_is_refused(im: Im, query: str) -> None:
    answer = im.call(IMPORT, {"UserID": "alice"}, query=query)

    assert (answer["ActionStatus"], answer["ErrorCode"]) == ("FAIL", 70402)
    assert "sdkappid" in answer["ErrorInfo"]
    assert im.accounts() == set()


def test_a_missing_app_is_named_once(im: Im) -> None:
    answer = im.call(IMPORT, {"UserID": "alice"}, query="")

    assert answer["ErrorInfo"].count("sdkappid") == 1, answer["ErrorInfo"]


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain", None],
    ids=["curl -d", "text/plain", "none"],
)
def test_a_json_body_is_read_whatever_its_content_type(im: Im, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}

    answer = im.call(IMPORT, b'{"UserID": "alice"}', headers=headers)

    assert answer == ok()
    assert im.accounts() == {"alice"}


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


def test_unknown_commands_and_methods_answer_in_the_im_shape(im: Im) -> None:
    unknown = im.call("sns/no_such_command", {})
    wrong_method = im.http.get(f"/v4/{FRIEND_ADD}?sdkappid={APP}")

    assert unknown == fail(30001, "unknown command /v4/sns/no_such_command")
    assert (wrong_method.status_code, wrong_method.headers["allow"], wrong_method.json()) == (
        405,
        "POST",
        fail(30001, f"/v4/{FRIEND_ADD}: Method Not Allowed"),
    )


# -- messages and history retention ----------------------------------------------------------------


def send(im: Im, sender: str, receiver: str, random: int, text: str) -> dict[str, Any]:
    """Send a text message; check the answer and the stored row."""
    content = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]
    body = {"From_Account": sender, "To_Account": receiver, "MsgRandom": random, "MsgBody": content}
    answer = im.call(SEND, body)
    now = int(im.clock.now().timestamp())
    seq = int(answer["MsgKey"].split("_")[0])
    assert answer == ok(MsgTime=now, MsgKey=f"{seq}_{random}_{now}")
    stored = im.rows(
        "SELECT from_account, to_account, random, sent_at, body FROM messages WHERE seq = ?", seq
    )
    assert stored == {(sender, receiver, random, now, json.dumps(content))}
    return answer


def texts(answer: dict[str, Any]) -> list[str]:
    assert answer["ActionStatus"] == "OK", answer
    return [message["MsgBody"][0]["MsgContent"]["Text"] for message in answer["MsgList"]]


def test_history_keeps_history_days(im: Im) -> None:
    im.import_users("alice", "bob")
    old = send(im, "alice", "bob", 7, "day 0")
    im.clock.advance(timedelta(days=8))
    new = send(im, "bob", "alice", 8, "day 8")

    answer = im.call(ROAM, roam("alice", "bob"))

    assert answer == ok(
        Complete=1,
        MsgCnt=1,
        LastMsgTime=new["MsgTime"],
        LastMsgKey=new["MsgKey"],
        MsgList=[
            {
                "From_Account": "bob",
                "To_Account": "alice",
                "MsgSeq": 2,
                "MsgRandom": 8,
                "MsgTimeStamp": new["MsgTime"],
                "MsgFlagBits": 0,
                "MsgKey": new["MsgKey"],
                "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "day 8"}}],
            }
        ],
    )
    # Sending purged what the app no longer keeps: a later extension does not bring it back.
    assert im.rows("SELECT seq FROM messages") == {(2,)}
    go_pro(im)
    extension = {"kind": "history_extension", "purchased_on": "2026-11-26", "days": 30}
    im.admin("POST", "/expansions", extension, status=201)
    assert texts(im.call(ROAM, roam("bob", "alice"))) == ["day 8"]
    assert old["MsgKey"] != new["MsgKey"]


def test_a_history_extension_keeps_older_messages(im: Im) -> None:
    im.import_users("alice", "bob")
    go_pro(im)
    extension = {"kind": "history_extension", "purchased_on": "2026-11-26", "days": 30}
    im.admin("POST", "/expansions", extension, status=201)
    old = send(im, "alice", "bob", 7, "day 0")
    im.clock.advance(timedelta(days=8))
    send(im, "bob", "alice", 8, "day 8")

    longer = im.call(ROAM, roam("bob", "alice"))

    assert texts(longer) == ["day 8", "day 0"]
    assert longer["LastMsgKey"] == old["MsgKey"]


def test_history_pages_newest_first(im: Im) -> None:
    im.import_users("alice", "bob", "carol")
    sent = []
    for i in range(5):
        sender, receiver = ("alice", "bob") if i % 2 == 0 else ("bob", "alice")
        sent.append(send(im, sender, receiver, i, f"m{i}"))
        send(im, "alice", "carol", 100 + i, "elsewhere")
        im.clock.advance(timedelta(seconds=1))

    pages, key = [], None
    for _ in range(len(sent)):  # at most one page per message
        answer = im.call(ROAM, roam("alice", "bob", MaxCnt=2, LastMsgKey=key))
        pages.append((texts(answer), answer["Complete"]))
        key = answer["LastMsgKey"]
        if answer["Complete"]:
            break

    assert pages == [(["m4", "m3"], 0), (["m2", "m1"], 0), (["m0"], 1)]
    assert key == sent[0]["MsgKey"]
    window = roam("bob", "alice", MinTime=sent[1]["MsgTime"], MaxTime=sent[3]["MsgTime"])
    assert texts(im.call(ROAM, window)) == ["m3", "m2", "m1"]


def test_a_message_between_accounts_never_imported_is_refused(im: Im) -> None:
    im.import_users("alice")
    content = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}]
    body = {"From_Account": "alice", "To_Account": "ghost", "MsgRandom": 1, "MsgBody": content}

    answer = im.call(SEND, body)

    assert answer == fail(90001, "not imported: 'ghost'")
    assert im.rows("SELECT seq FROM messages") == set()


def test_a_deeply_nested_message_does_not_break_the_history(im: Im) -> None:
    im.import_users("alice", "bob")
    content: dict[str, Any] = {"Text": "deep"}
    for _ in range(300):
        content = {"Nested": content}
    body = {"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": []}
    body["MsgBody"] = [{"MsgType": "TIMCustomElem", "MsgContent": content}]

    stored = im.call(SEND, body)
    history = im.post(ROAM, roam("alice", "bob"))

    assert stored == fail(90001, "MsgBody.0.MsgContent: nested deeper than 16 levels")
    assert (history.status_code, history.json()["MsgList"]) == (200, [])


# -- the callback ----------------------------------------------------------------------------------


def test_the_login_callback_counts_daily_active_users(im: Im) -> None:
    url = f"/callback?SdkAppid={APP}&CallbackCommand=State.StateChange&contenttype=json"
    for user in ("alice", "bob", "alice"):
        body = {
            "CallbackCommand": "State.StateChange",
            "EventTime": int(im.clock.now().timestamp() * 1000),
            "Info": {"Action": "Login", "To_Account": user, "Reason": "Register"},
        }
        answer = im.http.post(url, json=body)
        assert (answer.status_code, answer.json()) == (200, ok())

    usage = im.admin("GET", "/usage?month=2026-11")

    assert usage["dau"] == [{"day": "2026-11-26", "users": 2}]
    assert usage["peak_dau"] == {"users": 2, "day": "2026-11-26"}


# -- reconcile from SQLite -------------------------------------------------------------------------


@pytest.fixture
def sync_limiter(backend: Backend, clock: ManualClock) -> Iterator[Limiter]:
    engine = Limiter(SyncStore(backend.sync_client()), settings=SETTINGS, clock=clock)
    yield engine
    engine.close()


def build_world(im: Im, app: str = APP) -> None:
    query = f"sdkappid={app}"
    assert (
        im.call(MULTI_IMPORT, {"Accounts": ["alice", "bob", "carol"]}, query=query)["ErrorCode"]
        == 0
    )
    both = {"From_Account": "alice", "AddFriendItem": peers("bob")}
    single = {
        "From_Account": "alice",
        "AddFriendItem": peers("carol"),
        "AddType": "Add_Type_Single",
    }
    for body in (both, single):
        assert im.call(FRIEND_ADD, body, query=query)["Fail_Account"] == []
    for group, type in (("g1", "Public"), ("av1", "AVChatRoom")):
        body = {
            "Owner_Account": "alice",
            "Type": type,
            "GroupId": group,
            "Name": group,
            "MemberList": members("bob", "carol"),
        }
        assert im.call(CREATE_GROUP, body, query=query)["ErrorCode"] == 0


def counts(im: Im, app: str) -> tuple[Any, ...]:
    return (
        im.usage(app),
        [im.user(user, app) for user in ("alice", "bob", "carol")],
        [im.group(group, app) for group in ("g1", "av1")],
    )


def flush(backend: Backend) -> None:
    with closing(backend.sync_client()) as client:
        client.flushdb()


@pytest.mark.parametrize(
    ("apps", "argv"),
    [([APP], ["--json", APP]), ([APP, OTHER_APP], ["--json"])],
    ids=["one app", "every app"],
)
def test_reconcile_restores_the_counts_from_sqlite(
    im: Im,
    backend: Backend,
    sync_limiter: Limiter,
    capsys: pytest.CaptureFixture[str],
    apps: list[str],
    argv: list[str],
) -> None:
    for app in (APP, OTHER_APP):
        build_world(im, app)
    expected = {app: counts(im, app) for app in apps}
    assert expected[APP][0] == Usage(users=3, groups=2, av_chatrooms=1)
    flush(backend)
    assert im.usage() == Usage(users=0, groups=0, av_chatrooms=0)

    code = reconcile.main(["--db", str(im.db_path), *argv], limiter=sync_limiter)

    assert code == 0
    assert {app: counts(im, app) for app in apps} == expected
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [report["app_id"] for report in reports] == apps
    assert reports[0]["accounts"] == {"before": 0, "after": 3, "added": 3, "removed": 0}
    assert reports[0]["friendships"]["after"] == 3
    assert reports[0]["memberships"]["after"] == 6


def test_reconcile_without_a_database_exits_2(
    im: Im, sync_limiter: Limiter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.sqlite3"

    assert reconcile.main(["--db", str(missing), APP], limiter=sync_limiter) == 2

    assert capsys.readouterr().err == f"reconcile: no database at {missing}\n"
    assert not missing.exists()
    assert im.usage() == Usage(users=0, groups=0, av_chatrooms=0)


# -- OpenAPI ---------------------------------------------------------------------------------------


def test_openapi_lists_every_command(im: Im) -> None:
    answer = im.http.get("/openapi.json")

    assert answer.status_code == 200
    paths = answer.json()["paths"]
    assert {path for path in paths if path.startswith("/v4/")} == {f"/v4/{c}" for c in COMMANDS}
    assert all(set(paths[f"/v4/{c}"]) == {"post"} for c in COMMANDS)


# -- found in review -------------------------------------------------------------------------------


def test_reconcile_after_a_group_owner_was_deleted_finds_no_drift(
    im: Im, sync_limiter: Limiter, capsys: pytest.CaptureFixture[str]
) -> None:
    im.import_users("own", "m1")
    group = im.create_group("own", "m1")
    im.call(ACCOUNT_DELETE, {"DeleteItem": [{"UserID": "own"}]})

    assert reconcile.main(["--db", str(im.db_path), "--json", APP], limiter=sync_limiter) == 0

    report = json.loads(capsys.readouterr().out)
    assert report["memberships"] == {"before": 1, "after": 1, "added": 0, "removed": 0}
    assert report["changes_total"] == 0
    assert im.group(group) == GroupUsage(group, "Public", 1)


def test_account_delete_retried_after_an_outage_reports_the_account_deleted(im: Im) -> None:
    im.import_users("alice", "bob")
    im.create_group("alice", "bob")
    body = {"DeleteItem": [{"UserID": "bob"}]}

    with down(im, "closed") as unreachable:
        first = unreachable.post(ACCOUNT_DELETE, body)
    retry = im.call(ACCOUNT_DELETE, body)

    assert (first.status_code, first.headers["retry-after"]) == (503, "1")
    assert retry == ok(ResultItem=[{"UserID": "bob", "ResultCode": 0, "ResultInfo": ""}])
    assert im.user("bob") == (False, 0, 0)


@pytest.mark.parametrize(
    ("key", "info"),
    [
        ("99999999999999999999999_1_1", "LastMsgKey: not a key this backend gave out"),
        ("0_1_1", "LastMsgKey: not a key this backend gave out: '0_1_1'"),
        ("x_1_1", "LastMsgKey: not a key this backend gave out: 'x_1_1'"),
    ],
    ids=["too big", "zero", "not a number"],
)
def test_a_message_key_not_given_out_is_refused(im: Im, key: str, info: str) -> None:
    im.import_users("alice", "bob")

    answer = im.call(ROAM, roam("alice", "bob", LastMsgKey=key))

    assert (answer["ActionStatus"], answer["ErrorCode"]) == ("FAIL", 90001)
    assert answer["ErrorInfo"].startswith(info)


@pytest.mark.parametrize(
    ("content", "info"),
    [
        (b'{"Text": "\\ud800"}', "cannot be stored as JSON text"),
        (b'{"Score": NaN}', "cannot be stored as JSON text"),
        (b'{"Score": 1e999}', "cannot be stored as JSON text"),
    ],
    ids=["lone surrogate", "NaN", "infinite"],
)
def test_message_content_that_cannot_come_back_out_is_refused(
    im: Im, content: bytes, info: str
) -> None:
    im.import_users("alice", "bob")
    body = (
        b'{"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, '
        b'"MsgBody": [{"MsgType": "TIMCustomElem", "MsgContent": ' + content + b"}]}"
    )

    answer = im.call(SEND, body)
    history = im.call(ROAM, roam("alice", "bob"))

    assert (answer["ActionStatus"], answer["ErrorCode"]) == ("FAIL", 90001)
    assert answer["ErrorInfo"].startswith(f"MsgBody.0.MsgContent: {info}")
    assert history["MsgList"] == []


def test_a_v4_path_without_a_command_answers_in_the_im_shape(im: Im) -> None:
    answer = im.http.post(f"/v4/x?sdkappid={APP}", json={})

    assert (answer.status_code, answer.json()) == (200, fail(90001, "unknown command /v4/x"))


def test_a_group_name_is_measured_in_bytes(im: Im) -> None:
    im.import_users("alice")
    body = {"Owner_Account": "alice", "Type": "Public", "Name": "群" * 11}

    answer = im.call(CREATE_GROUP, body)

    assert answer == fail(10004, "Name: must be 1 to 30 bytes, got 33")


def test_an_oversized_id_is_not_echoed_whole(im: Im) -> None:
    answer = im.call(IMPORT, {"UserID": "7" * 5000})

    assert answer["ErrorCode"] == 70402
    assert answer["ErrorInfo"] == f"UserID: must be 1 to 32 bytes, got 5000: {'7' * 64!r}..."


def test_paging_follows_time_even_when_the_clock_went_back(im: Im) -> None:
    im.import_users("alice", "bob")
    first = send(im, "alice", "bob", 1, "later")
    im.clock.advance(timedelta(minutes=-5))  # a host clock stepped back: seq 2 is older
    send(im, "bob", "alice", 2, "earlier")

    page = im.call(ROAM, roam("alice", "bob", MaxCnt=1))
    rest = im.call(
        ROAM,
        roam("alice", "bob", MaxCnt=1, MaxTime=page["LastMsgTime"], LastMsgKey=page["LastMsgKey"]),
    )

    assert (texts(page), page["Complete"], page["LastMsgKey"]) == (["later"], 0, first["MsgKey"])
    assert (texts(rest), rest["Complete"]) == (["earlier"], 1)


# -- found in the second review --------------------------------------------------------------------


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


def test_app_locks_are_kept_only_while_in_use(im: Im) -> None:
    for n in range(20):
        im.call(IMPORT, {"UserID": "alice"}, query=f"sdkappid=app{n}")
        im.call(FRIEND_ADD, {}, query=f"sdkappid=app{n}")  # refused before any lock

    assert im.http.app.state.db._apps == {}


@pytest.mark.parametrize(
    "key", ["1_1_\u00b2", "\uff11_1_1", "1_1_\u0661"], ids=["superscript", "fullwidth", "arabic"]
)
def test_a_message_key_with_non_ascii_digits_is_refused(im: Im, key: str) -> None:
    im.import_users("alice", "bob")

    answer = im.call(ROAM, roam("alice", "bob", LastMsgKey=key))

    assert answer == fail(90001, f"LastMsgKey: not a key this backend gave out: {key!r}")


def test_message_content_over_12_kb_is_refused(im: Im) -> None:
    im.import_users("alice", "bob")
    content = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "x" * 12_000}}]
    body = {"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": content}

    answer = im.call(SEND, body)

    assert answer == fail(90001, "MsgBody.0.MsgContent: at most 12000 bytes of JSON, got 12012")


@pytest.mark.parametrize(
    ("path", "info"),
    [
        (f"/v4/{IMPORT}/", f"unknown command /v4/{IMPORT}/"),
        ("/v4", "unknown command /v4"),
    ],
    ids=["trailing slash", "v4 alone"],
)
def test_near_miss_paths_answer_in_the_im_shape(im: Im, path: str, info: str) -> None:
    answer = im.http.post(f"{path}?sdkappid={APP}", json={"UserID": "alice"})

    assert (answer.status_code, answer.json()["ErrorInfo"]) == (200, info)
    assert im.accounts() == set()


def test_an_admin_body_that_is_not_utf8_gets_a_422(im: Im) -> None:
    answer = im.http.put(f"/admin/apps/{APP}/edition", content=b"\xff", headers=AUTH)

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body"]
