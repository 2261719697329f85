"""The example IM backend (``examples/im_backend``) in process, for its tests: the commands, the
expected answers, an :class:`Im` client that seeds through the API and reads SQLite and the
limiter, and the ``im`` fixture (registered by ``tests/conftest.py``).

The ``im`` fixture runs the app with its lifespan on an engine over the ``backend`` fixture and
a fresh SQLite file. Nothing is mocked: an outage is an engine on a port where no Redis listens.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from examples.im_backend.app import create_app
from limiter import AsyncLimiter, AsyncStore, GroupUsage, Settings, Usage
from limiter.testing import ManualClock
from tests.conftest import APP, Backend

TOKEN = "ops-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SETTINGS = Settings(
    redis_url="memory://unused", cache_seconds=0, admin_tokens={"ops": SecretStr(TOKEN)}
)
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


# The hosted IM's code per service for a bad request.
INVALID = {"im_open_login_svc": 70402, "sns": 30001, "group_open_http_svc": 10004, "openim": 90001}
STORE_DOWN = "the limit store is unavailable; retry (nothing was added; a removal completes)"
END_OF_TIME = 2**32 - 1

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
