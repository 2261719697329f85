"""``python -m examples.im_backend.reconcile``: the limiter's counts rebuilt from the example's
SQLite database after Redis lost them, for one app or every app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from examples.im_backend import reconcile
from limiter import GroupUsage, Limiter, SyncStore, Usage
from limiter.testing import ManualClock
from tests.conftest import APP, Backend
from tests.example_support import (
    ACCOUNT_DELETE,
    CREATE_GROUP,
    FRIEND_ADD,
    MULTI_IMPORT,
    SETTINGS,
    Im,
    members,
    peers,
)

OTHER_APP = "1400000002"


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
