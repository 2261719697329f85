"""The example's ``im_open_login_svc`` commands: account imports up to the account cap (the
decorator path and the batch path) and account deletes with what they free."""

from __future__ import annotations

from typing import Any

import pytest

from limiter import GroupUsage, Usage
from tests.conftest import APP
from tests.example_support import (
    ACCOUNT_DELETE,
    IMPORT,
    MULTI_IMPORT,
    Im,
    down,
    fail,
    ok,
    refused,
)


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
