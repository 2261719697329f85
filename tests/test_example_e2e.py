"""The example IM backend end to end: uvicorn serving ``examples.im_backend.app:app`` in its own
process on the real test Redis, driven over HTTP as the hosted IM's REST API would be.

One server serves the module; every test uses its own app, so they do not interfere.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis

from bench.servers import ROOT, Server, environment, free_port, start
from examples.im_backend.db import Database
from tests.conftest import REDIS_URL, real_redis_or_skip

pytestmark = pytest.mark.redis

TOKEN = "e2e-ops-token-0123456789"
SERVICE_TIMEOUT = 10.0


def today() -> str:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()


def server_env(redis_url: str, db_path: Path) -> dict[str, str]:
    return environment(
        LIMITER_REDIS_URL=redis_url,
        LIMITER_ADMIN_TOKENS=json.dumps({"ops": TOKEN}),
        LIMITER_CACHE_SECONDS="0",
        IM_DB_PATH=str(db_path),
    )


def serve(redis_url: str, directory: Path) -> Server:
    port = free_port()
    return start(
        [
            sys.executable,
            *("-m", "uvicorn", "examples.im_backend.app:app"),
            *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
        ],
        base_url=f"http://127.0.0.1:{port}",
        log_path=directory / "server.log",
        env=server_env(redis_url, directory / "im.sqlite3"),
    )


def assert_stopped_cleanly(server: Server, status: int) -> None:
    """Ctrl-C: the lifespan's shutdown ran (database and store closed) and the exit is 0."""
    output = server.output()
    assert status == 0, output
    assert "Application shutdown complete." in output and "Traceback" not in output, output


@dataclass
class Backend:
    """The running example: its HTTP client, the Redis behind it, its environment and its
    SQLite database."""

    server: Server
    http: httpx.Client
    store: redis.Redis
    env: dict[str, str]
    database: Path


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    client = real_redis_or_skip()
    try:
        directory = tmp_path_factory.mktemp("im_backend")
        server = serve(REDIS_URL, directory)
        try:
            with httpx.Client(base_url=server.base_url, timeout=SERVICE_TIMEOUT) as http:
                env = server_env(REDIS_URL, directory / "im.sqlite3")
                yield Backend(server, http, client, env, directory / "im.sqlite3")
        finally:
            status = server.stop(signal.SIGINT)
        assert_stopped_cleanly(server, status)
    finally:
        client.flushdb()
        client.close()


class Im:
    """One app of the example, spoken to in the hosted IM's shapes."""

    def __init__(self, backend: Backend, app: str) -> None:
        self.backend = backend
        self.app = app

    def call(self, command: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.backend.http.post(f"/v4/{command}", params={"sdkappid": self.app}, json=body)
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()
        return data

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.backend.http.request(
            method,
            f"/admin/apps/{self.app}{path}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            **kwargs,
        )

    def app_view(self) -> dict[str, Any]:
        answer = self.admin("GET", "")
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()
        return data

    def import_accounts(self, users: list[str]) -> None:
        for first in range(0, len(users), 100):
            chunk = users[first : first + 100]
            answer = self.call("im_open_login_svc/multiaccount_import", {"Accounts": chunk})
            assert answer == ok(FailAccounts=[], FailReasons=[])

    def account_import(self, user: str) -> dict[str, Any]:
        return self.call("im_open_login_svc/account_import", {"UserID": user})

    def friend_add(self, user: str, peers: list[str], both: bool = True) -> dict[str, Any]:
        return self.call(
            "sns/friend_add",
            {
                "From_Account": user,
                "AddFriendItem": [
                    {"To_Account": peer, "AddSource": "AddSource_Type_e2e"} for peer in peers
                ],
                "AddType": "Add_Type_Both" if both else "Add_Type_Single",
            },
        )

    def create_group(
        self, owner: str, group: str | None, members: Sequence[str] = (), type: str = "Public"
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Owner_Account": owner,
            "Type": type,
            "Name": "e2e",
            "MemberList": [{"Member_Account": user} for user in members],
        }
        if group is not None:
            body["GroupId"] = group
        return self.call("group_open_http_svc/create_group", body)

    def add_members(self, group: str, users: list[str]) -> dict[str, Any]:
        return self.call(
            "group_open_http_svc/add_group_member",
            {"GroupId": group, "MemberList": [{"Member_Account": user} for user in users]},
        )

    def group_info(self, group: str) -> dict[str, Any]:
        answer = self.call("group_open_http_svc/get_group_info", {"GroupIdList": [group]})
        assert answer["ActionStatus"] == "OK", answer
        info: dict[str, Any] = answer["GroupInfo"][0]
        return info


def ok(**fields: Any) -> dict[str, Any]:
    return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", **fields}


def refused(limit: str, cap: int, scope: str, scope_id: str, current: int, code: int) -> str:
    """The ErrorInfo of a refusal (the library's Refusal.describe())."""
    return (
        f"{limit} limit {cap} refuses the addition for {scope} {scope_id!r} "
        f"(current {current}; IM code {code})"
    )


def fail(code: int, info: str) -> dict[str, Any]:
    return {"ActionStatus": "FAIL", "ErrorCode": code, "ErrorInfo": info}


def users(prefix: str, count: int, first: int = 0) -> list[str]:
    return [f"{prefix}{n:03d}" for n in range(first, first + count)]


def rows(db_path: Path, sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` in the backend's SQLite database (opened and closed here)."""
    db = sqlite3.connect(db_path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


# -- the trial's limits ------------------------------------------------------------------------


def test_the_trial_takes_100_accounts_and_refuses_the_101st_with_70398(backend: Backend):
    im = Im(backend, "1400000101")
    im.import_accounts(users("u", 100))

    assert im.account_import("u100") == fail(
        70398, refused("users", 100, "app", "1400000101", 100, 70398)
    )
    # A batch: an account already there changes nothing, the new ones fail one by one.
    answer = im.call(
        "im_open_login_svc/multiaccount_import", {"Accounts": ["u099", "u100", "u101"]}
    )
    assert answer == ok(
        FailAccounts=["u100", "u101"],
        FailReasons=[
            {
                "UserID": user,
                "ErrorCode": 70398,
                "ErrorInfo": refused("users", 100, "app", "1400000101", 100, 70398),
            }
            for user in ("u100", "u101")
        ],
    )
    assert im.account_import("u000") == ok()  # already imported: not an addition
    assert im.app_view()["usage"]["users"] == 100


def test_friend_lists_are_capped_at_20_on_both_sides(backend: Backend):
    im = Im(backend, "1400000102")
    im.import_accounts(["alice", "bob", "carol", "dave", *users("p", 20), *users("q", 20)])
    added = im.friend_add("alice", users("p", 20))
    assert added == ok(
        ResultItem=[{"To_Account": p, "ResultCode": 0, "ResultInfo": ""} for p in users("p", 20)],
        Fail_Account=[],
    )
    assert im.friend_add("carol", users("q", 20))["Fail_Account"] == []

    # alice's own list is full: 30010 for each peer.
    assert im.friend_add("alice", ["bob", "dave"]) == ok(
        ResultItem=[
            {
                "To_Account": peer,
                "ResultCode": 30010,
                "ResultInfo": refused("friends", 20, "user", "alice", 20, 30010),
            }
            for peer in ("bob", "dave")
        ],
        Fail_Account=["bob", "dave"],
    )
    # carol's list is full: bob's both-way add fails on her side (30014), dave's is per peer.
    assert im.friend_add("bob", ["carol", "dave"]) == ok(
        ResultItem=[
            {
                "To_Account": "carol",
                "ResultCode": 30014,
                "ResultInfo": refused("friends", 20, "user", "carol", 20, 30014),
            },
            {"To_Account": "dave", "ResultCode": 0, "ResultInfo": ""},
        ],
        Fail_Account=["carol"],
    )
    # A single-way add only fills the requester's list: carol's being full does not matter.
    assert im.friend_add("bob", ["carol"], both=False) == ok(
        ResultItem=[{"To_Account": "carol", "ResultCode": 0, "ResultInfo": ""}],
        Fail_Account=[],
    )


def test_a_full_trial_group_refuses_new_members_with_10014(backend: Backend):
    im = Im(backend, "1400000103")
    im.import_accounts(["owner", *users("m", 25)])
    assert im.create_group("owner", "g-full", users("m", 18)) == ok(GroupId="g-full")

    # One place left: a batch of two does not fit, and nothing of it is added.
    full = fail(10014, refused("group_members", 20, "group", "g-full", 19, 10014))
    assert im.add_members("g-full", ["m018", "m019"]) == full
    assert im.group_info("g-full")["MemberNum"] == 19
    assert im.add_members("g-full", ["m018"]) == ok(
        MemberList=[{"Member_Account": "m018", "Result": 1}]
    )
    assert im.group_info("g-full")["MemberNum"] == 20
    assert im.add_members("g-full", ["m019"]) == fail(
        10014, refused("group_members", 20, "group", "g-full", 20, 10014)
    )
    # Someone already in is no addition: the full group answers "already a member".
    assert im.add_members("g-full", ["m000"]) == ok(
        MemberList=[{"Member_Account": "m000", "Result": 2}]
    )
    info = im.group_info("g-full")
    assert (info["MemberNum"], info["MaxMemberNum"]) == (20, 20)
    # A removal frees a place for exactly one more.
    removal = {"GroupId": "g-full", "MemberToDel_Account": ["m000"]}
    assert im.call("group_open_http_svc/delete_group_member", removal) == ok()
    assert im.add_members("g-full", ["m019"]) == ok(
        MemberList=[{"Member_Account": "m019", "Result": 1}]
    )
    assert im.add_members("g-full", ["m020"])["ErrorCode"] == 10014
    # Created with more initial members (owner included) than the limit: 10038, no group.
    answer = im.create_group("owner", "g-big", users("m", 20))
    assert answer["ActionStatus"] == "FAIL" and answer["ErrorCode"] == 10038, answer
    assert im.group_info("g-big")["ErrorCode"] == 10010


def test_a_user_at_50_groups_is_refused_10037_on_create_and_per_member_on_add(
    backend: Backend,
):
    im = Im(backend, "1400000104")
    im.import_accounts(["busy", "other", "free"])
    for n in range(50):
        group = f"g{n:02d}"
        assert im.create_group("busy", group, type="Private") == ok(GroupId=group)

    at_cap = refused("groups_per_user", 50, "user", "busy", 50, 10037)
    assert im.create_group("busy", "g50", type="Private") == fail(10037, at_cap)
    # As an initial member of someone else's group: the whole creation is refused.
    assert im.create_group("other", "with-busy", ["busy", "free"]) == fail(10037, at_cap)
    assert im.group_info("with-busy")["ErrorCode"] == 10010
    # Added to an existing group: busy fails alone (Result 0, ErrorCode 10037), free goes in.
    assert im.create_group("other", "others") == ok(GroupId="others")
    assert im.add_members("others", ["busy", "free"]) == ok(
        MemberList=[
            {"Member_Account": "busy", "Result": 0, "ErrorCode": 10037},
            {"Member_Account": "free", "Result": 1},
        ]
    )
    assert im.group_info("others")["MemberNum"] == 2
    # AV chat rooms do not count toward groups_per_user.
    assert im.create_group("busy", "av-busy", type="AVChatRoom") == ok(GroupId="av-busy")


def test_the_trial_refuses_the_11th_av_chatroom_with_10036(backend: Backend):
    im = Im(backend, "1400000105")
    im.import_accounts(["host"])
    for _ in range(10):
        answer = im.create_group("host", None, type="AVChatRoom")
        assert answer["ActionStatus"] == "OK", answer
        assert answer["GroupId"].startswith("@TGS#a") and len(answer["GroupId"]) == 16

    assert im.create_group("host", "av-11", type="AVChatRoom") == fail(
        10036, refused("av_chatrooms", 10, "app", "1400000105", 10, 10036)
    )
    assert im.create_group("host", "plain") == ok(GroupId="plain")  # other types still work
    usage = im.app_view()["usage"]
    assert (usage["av_chatrooms"], usage["groups"]) == (10, 11)
    # An AV room's membership is unlimited, also on the trial.
    room = answer["GroupId"]
    im.import_accounts(users("v", 30))
    assert im.add_members(room, users("v", 30)) == ok(
        MemberList=[{"Member_Account": user, "Result": 1} for user in users("v", 30)]
    )
    info = im.group_info(room)
    assert (info["Type"], info["MemberNum"], info["MaxMemberNum"]) == ("AVChatRoom", 31, None)


# -- plan changes through the admin API ---------------------------------------------------------


def test_upgrade_expansion_and_group_override_change_what_the_backend_allows(backend: Backend):
    app = "1400000106"
    im = Im(backend, app)
    im.import_accounts(users("u", 100))
    assert im.create_group("u000", "big", users("u", 19, first=1)) == ok(GroupId="big")
    assert im.create_group("u000", "other") == ok(GroupId="other")
    assert im.account_import("u100")["ErrorCode"] == 70398
    assert im.group_info("big")["MaxMemberNum"] == 20

    expansion = {"kind": "group_members_2000", "purchased_on": today(), "months": 1}
    answer = im.admin("POST", "/expansions", json=expansion)
    assert answer.status_code == 409, answer.text  # expansions are for pro apps

    upgrade = {"edition": "pro", "purchased_on": today(), "months": 1}
    answer = im.admin("PUT", "/edition", json=upgrade)
    assert answer.status_code == 200, answer.text
    view = im.app_view()
    assert (view["edition"], view["status"], view["limits"]["users"]) == ("pro", "active", None)
    assert im.account_import("u100") == ok()
    assert im.app_view()["usage"]["users"] == 101
    assert im.group_info("big")["MaxMemberNum"] == 200
    assert im.add_members("big", ["u020"]) == ok(
        MemberList=[{"Member_Account": "u020", "Result": 1}]
    )

    answer = im.admin("POST", "/expansions", json=expansion)
    assert answer.status_code == 201, answer.text
    assert im.group_info("big")["MaxMemberNum"] == 2000
    assert im.app_view()["limits"]["group_members"]["Public"] == 2000

    answer = im.admin("PUT", "/groups/big/overrides/group_members", json={"value": 25})
    assert answer.status_code == 200, answer.text
    assert im.group_info("big")["MaxMemberNum"] == 25
    assert im.group_info("other")["MaxMemberNum"] == 2000  # the override is for one group
    # big holds 21: four more fit, the 26th does not.
    assert im.add_members("big", users("u", 4, first=21)) == ok(
        MemberList=[{"Member_Account": user, "Result": 1} for user in users("u", 4, first=21)]
    )
    assert im.add_members("big", ["u025"]) == fail(
        10014, refused("group_members", 25, "group", "big", 25, 10014)
    )
    info = im.group_info("big")
    assert (info["MemberNum"], info["MaxMemberNum"]) == (25, 25)


def test_a_lapsed_pro_package_refuses_additions_with_60020_until_renewed(backend: Backend):
    im = Im(backend, "1400000110")
    im.import_accounts(["alice", "bob"])
    lapsed = (datetime.now(ZoneInfo("Asia/Shanghai")).date() - timedelta(days=70)).isoformat()
    answer = im.admin("PUT", "/edition", json={"edition": "pro", "purchased_on": lapsed})
    assert answer.status_code == 200, answer.text
    assert im.app_view()["status"] == "suspended"

    # The whole call is refused, whatever the limits (the package lapsed for the app).
    for answer in (
        im.account_import("carol"),
        im.create_group("alice", "g1"),
        im.friend_add("alice", ["bob"]),
    ):
        assert set(answer) == {"ActionStatus", "ErrorCode", "ErrorInfo"}, answer
        assert (answer["ActionStatus"], answer["ErrorCode"]) == ("FAIL", 60020), answer
        assert "'1400000110'" in answer["ErrorInfo"], answer
    assert im.group_info("g1")["ErrorCode"] == 10010

    answer = im.admin("POST", "/edition/renew", json={"months": 1})
    assert answer.status_code == 200, answer.text
    assert im.app_view()["status"] == "active"
    assert im.account_import("carol") == ok()


def test_concurrent_adds_fill_a_trial_group_to_exactly_20(backend: Backend):
    im = Im(backend, "1400000111")
    joiners = users("j", 40)
    im.import_accounts(["owner", *joiners])
    assert im.create_group("owner", "busy") == ok(GroupId="busy")
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda user: im.add_members("busy", [user]), joiners))
    added = [answer for answer in answers if answer["ActionStatus"] == "OK"]
    assert all(answer["MemberList"][0]["Result"] == 1 for answer in added), answers
    assert len(added) == 19
    assert {answer["ErrorCode"] for answer in answers if answer not in added} == {10014}
    assert im.group_info("busy")["MemberNum"] == 20


def test_concurrent_imports_at_the_account_cap_let_exactly_100_in(backend: Backend):
    app = "1400000109"
    im = Im(backend, app)
    wanted = users("c", 130)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(im.account_import, wanted))
    accepted = [user for user, answer in zip(wanted, answers, strict=True) if answer == ok()]
    refusals = {answer["ErrorCode"] for answer in answers if answer != ok()}
    assert len(accepted) == 100 and refusals == {70398}, answers
    assert im.app_view()["usage"]["users"] == 100
    stored = rows(backend.database, f"SELECT user_id FROM accounts WHERE app = '{app}'")
    assert sorted(user for (user,) in stored) == sorted(accepted)


# -- Redis lost its data ------------------------------------------------------------------------


def reconcile(backend: Backend, *apps: str) -> dict[str, dict[str, Any]]:
    """Run the reconcile command on the backend's database; each app's drift report."""
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "examples.im_backend.reconcile", "--json", *apps),
            *("--db", str(backend.database)),
        ],
        cwd=ROOT,
        env=backend.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return {report["app_id"]: report for report in map(json.loads, done.stdout.splitlines())}


def test_racing_additions_and_removals_leave_sqlite_and_the_counters_equal(backend: Backend):
    """16 clients at once: joins and leaves of one trial group, friend adds and deletes of one
    user, account deletes and re-imports, a group destroyed and re-created while others join
    it. Afterwards a reconcile from SQLite finds nothing to change, and no limit is passed."""
    app = "1400000120"
    im = Im(backend, app)
    people = users("r", 30)
    im.import_accounts(["hub", *people])
    assert im.create_group("hub", "club", people[:10]) == ok(GroupId="club")
    assert im.create_group("hub", "flash") == ok(GroupId="flash")
    chance = random.Random(20261126)

    def step(n: int) -> None:
        user = chance.choice(people)
        kind = n % 8
        if kind == 0:
            im.add_members("club", [user])
        elif kind == 1:
            body = {"GroupId": "club", "MemberToDel_Account": [user]}
            im.call("group_open_http_svc/delete_group_member", body)
        elif kind == 2:
            im.friend_add("hub", [user])
        elif kind == 3:
            body = {"From_Account": "hub", "To_Account": [user]}
            im.call("sns/friend_delete", body)
        elif kind == 4:
            im.call("im_open_login_svc/account_delete", {"DeleteItem": [{"UserID": user}]})
        elif kind == 5:
            im.account_import(user)
        elif kind == 6:
            im.add_members("flash", [user])
        else:
            im.call("group_open_http_svc/destroy_group", {"GroupId": "flash"})
            im.create_group("hub", "flash")

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(step, range(800)))

    report = reconcile(backend, app)[app]
    for name in ("accounts", "friendships", "groups", "memberships", "av_chatrooms"):
        assert (report[name]["added"], report[name]["removed"]) == (0, 0), (name, report)
    assert report["changes_total"] == 0, report["changes"]
    sizes = rows(
        backend.database, f"SELECT COUNT(*) FROM members WHERE app = '{app}' GROUP BY group_id"
    )
    assert max(size for (size,) in sizes) <= 20
    friends = rows(
        backend.database, f"SELECT COUNT(*) FROM friends WHERE app = '{app}' AND user_id = 'hub'"
    )
    assert friends[0][0] <= 20
    orphans = rows(
        backend.database,
        f"SELECT user_id FROM members WHERE app = '{app}' AND user_id NOT IN "
        f"(SELECT user_id FROM accounts WHERE app = '{app}')",
    )
    assert orphans == []


def test_reconcile_rebuilds_the_counters_after_redis_is_flushed(backend: Backend):
    app = "1400000107"
    im = Im(backend, app)
    im.import_accounts(users("u", 100))
    assert im.create_group("u000", "full", users("u", 19, first=1)) == ok(GroupId="full")
    for n in range(49):
        assert im.create_group("u000", f"g{n:02d}", type="Private") == ok(GroupId=f"g{n:02d}")
    for n in range(2):
        assert im.create_group("u000", f"av{n}", type="AVChatRoom") == ok(GroupId=f"av{n}")
    assert im.friend_add("u050", users("u", 20, first=60))["Fail_Account"] == []
    before = im.app_view()
    assert before["usage"] == {"users": 100, "groups": 52, "av_chatrooms": 2}

    def limits_hold() -> None:
        assert im.account_import("u100")["ErrorCode"] == 70398
        assert im.add_members("full", ["u099"])["ErrorCode"] == 10014
        assert im.create_group("u000", "one-more", type="Private")["ErrorCode"] == 10037
        assert im.friend_add("u050", ["u099"])["ResultItem"][0]["ResultCode"] == 30010
        assert im.friend_add("u099", ["u050"])["ResultItem"][0]["ResultCode"] == 30014

    limits_hold()

    backend.store.flushdb()
    assert im.app_view()["usage"] == {"users": 0, "groups": 0, "av_chatrooms": 0}

    reports = reconcile(backend)
    report = reports[app]
    drift = {
        name: report[name]
        for name in ("accounts", "friendships", "groups", "memberships", "av_chatrooms")
    }
    # Friend-list entries (20 both-way friendships: 40); members of 50 groups and 2 AV rooms.
    assert drift == {
        "accounts": {"before": 0, "after": 100, "added": 100, "removed": 0},
        "friendships": {"before": 0, "after": 40, "added": 40, "removed": 0},
        "groups": {"before": 0, "after": 52, "added": 52, "removed": 0},
        "memberships": {"before": 0, "after": 71, "added": 71, "removed": 0},
        "av_chatrooms": {"before": 0, "after": 2, "added": 2, "removed": 0},
    }
    changes = {
        (c["scope"], c["id"], c["count"]): (c["before"], c["after"]) for c in report["changes"]
    }
    assert changes[("user", "u000", "groups_per_user")] == (0, 50)  # AV rooms not counted
    assert changes[("user", "u050", "friends")] == (0, 20)
    assert changes[("group", "full", "group_members")] == (0, 20)
    # 21 friend counts, 20 users' group counts, 52 groups' member counts.
    assert (report["changes_total"], report["truncated"]) == (93, False)
    # With no APP named, every app of the database was rebuilt, not only this one.
    sql = "SELECT app FROM accounts UNION SELECT app FROM groups"
    apps = {name for (name,) in rows(backend.database, sql)}
    assert set(reports) == apps

    after = im.app_view()
    assert after["usage"] == before["usage"]
    assert after["limits"] == before["limits"]
    limits_hold()
    info = im.group_info("full")
    assert (info["MemberNum"], info["MaxMemberNum"]) == (20, 20)


def test_reconcile_exits_1_when_redis_is_down_and_2_without_a_database(tmp_path: Path):
    db_path = tmp_path / "im.sqlite3"
    Database(db_path).close()  # the example's database, without data
    env = server_env(f"redis://127.0.0.1:{free_port()}/0", db_path)
    command = [sys.executable, "-m", "examples.im_backend.reconcile", "1400000112"]

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *arguments],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    down = run("--db", str(db_path))
    assert down.returncode == 1, down.stderr
    assert down.stderr.startswith("reconcile: Redis unavailable") and "Traceback" not in down.stderr
    missing = run("--db", str(tmp_path / "missing.sqlite3"))
    assert missing.returncode == 2, missing.stderr
    assert missing.stderr == f"reconcile: no database at {tmp_path / 'missing.sqlite3'}\n"
    assert not (tmp_path / "missing.sqlite3").exists()


# -- Redis is down ------------------------------------------------------------------------------


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    """The example with LIMITER_REDIS_URL pointing at a port where nothing listens."""
    server = serve(f"redis://127.0.0.1:{free_port()}/0", tmp_path)
    try:
        with httpx.Client(base_url=server.base_url, timeout=SERVICE_TIMEOUT) as http:
            yield http, tmp_path / "im.sqlite3"
    finally:
        status = server.stop(signal.SIGINT)
    assert_stopped_cleanly(server, status)


def test_a_store_outage_answers_503_with_an_im_fail_body_and_changes_nothing(
    outage: tuple[httpx.Client, Path],
):
    http, db_path = outage
    app = "1400000108"
    # Accounts and a group already in the backend's database (imported before the outage).
    db = sqlite3.connect(db_path)
    try:
        with db:
            db.executemany("INSERT INTO accounts VALUES (?, ?)", [(app, "alice"), (app, "bob")])
            db.execute("INSERT INTO groups VALUES (?, 'g1', 'Public', 'alice', 'g1')", (app,))
            db.execute("INSERT INTO members VALUES (?, 'g1', 'alice')", (app,))
    finally:
        db.close()
    before = {
        table: sorted(rows(db_path, f"SELECT * FROM {table}"))
        for table in ("accounts", "friends", "groups", "members")
    }

    unavailable = "the limit store is unavailable; retry (nothing was added; a removal completes)"
    calls = [
        ("im_open_login_svc/account_import", {"UserID": "carol"}, 70500),
        ("im_open_login_svc/multiaccount_import", {"Accounts": ["carol", "dave"]}, 70500),
        (
            "sns/friend_add",
            {"From_Account": "alice", "AddFriendItem": [{"To_Account": "bob"}]},
            30006,
        ),
        (
            "group_open_http_svc/create_group",
            {"Owner_Account": "alice", "Type": "Public", "GroupId": "g2", "Name": "g2"},
            10002,
        ),
        (
            "group_open_http_svc/add_group_member",
            {"GroupId": "g1", "MemberList": [{"Member_Account": "bob"}]},
            10002,
        ),
    ]
    for command, body, code in calls:
        answer = http.post(f"/v4/{command}", params={"sdkappid": app}, json=body)
        assert answer.status_code == 503, (command, answer.text)
        assert answer.json() == fail(code, unavailable), command
    # Nothing reached the backend's own database.
    after = {
        table: sorted(rows(db_path, f"SELECT * FROM {table}"))
        for table in ("accounts", "friends", "groups", "members")
    }
    assert after == before
    # The admin API answers the outage as problem+json.
    answer = http.get(f"/admin/apps/{app}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("application/problem+json")
