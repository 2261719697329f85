"""The example over HTTP whatever the command: bad bodies and ids refused in the IM's shape,
``sdkappid`` forms, content types, unknown commands, paths and methods, the per-app locks, and
the other surfaces it mounts (the login callback, the admin API, the OpenAPI document)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import APP
from tests.example_support import (
    ADD_MEMBERS,
    AUTH,
    COMMANDS,
    CREATE_GROUP,
    FRIEND_ADD,
    GROUP_INFO,
    IMPORT,
    INVALID,
    MULTI_IMPORT,
    ROAM,
    SEND,
    Im,
    fail,
    members,
    ok,
    peers,
    roam,
    service_of,
)

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


def test_an_oversized_id_is_not_echoed_whole(im: Im) -> None:
    answer = im.call(IMPORT, {"UserID": "7" * 5000})

    assert answer["ErrorCode"] == 70402
    assert answer["ErrorInfo"] == f"UserID: must be 1 to 32 bytes, got 5000: {'7' * 64!r}..."


# -- sdkappid and the body's content type ----------------------------------------------------------


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


def test_app_locks_are_kept_only_while_in_use(im: Im) -> None:
    for n in range(20):
        im.call(IMPORT, {"UserID": "alice"}, query=f"sdkappid=app{n}")
        im.call(FRIEND_ADD, {}, query=f"sdkappid=app{n}")  # refused before any lock

    assert im.http.app.state.db._apps == {}


# -- unknown commands, paths and methods -----------------------------------------------------------


def test_unknown_commands_and_methods_answer_in_the_im_shape(im: Im) -> None:
    unknown = im.call("sns/no_such_command", {})
    wrong_method = im.http.get(f"/v4/{FRIEND_ADD}?sdkappid={APP}")

    assert unknown == fail(30001, "unknown command /v4/sns/no_such_command")
    assert (wrong_method.status_code, wrong_method.headers["allow"], wrong_method.json()) == (
        405,
        "POST",
        fail(30001, f"/v4/{FRIEND_ADD}: Method Not Allowed"),
    )


def test_a_v4_path_without_a_command_answers_in_the_im_shape(im: Im) -> None:
    answer = im.http.post(f"/v4/x?sdkappid={APP}", json={})

    assert (answer.status_code, answer.json()) == (200, fail(90001, "unknown command /v4/x"))


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


# -- the other surfaces: the callback, the admin API, the OpenAPI document -------------------------


def test_the_login_callback_counts_daily_active_users(im: Im) -> None:
    im.import_users("alice", "bob")  # accounts first: only accounts' logins count
    url = f"/callback?SdkAppid={APP}&CallbackCommand=State.StateChange&contenttype=json"
    for user in ("alice", "bob", "alice", "carol"):  # carol has no account: answered, not counted
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


def test_an_admin_body_that_is_not_utf8_gets_a_422(im: Im) -> None:
    answer = im.http.put(f"/admin/apps/{APP}/edition", content=b"\xff", headers=AUTH)

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body"]


def test_openapi_lists_every_command(im: Im) -> None:
    answer = im.http.get("/openapi.json")

    assert answer.status_code == 200
    paths = answer.json()["paths"]
    assert {path for path in paths if path.startswith("/v4/")} == {f"/v4/{c}" for c in COMMANDS}
    assert all(set(paths[f"/v4/{c}"]) == {"post"} for c in COMMANDS)
