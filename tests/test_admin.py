"""The admin HTTP API through HTTP, on fakeredis and the real server: authentication, every
endpoint, validation that changes nothing, and errors answered without the host's handler."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from itertools import pairwise
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from limiter import AsyncLimiter, AsyncStore, ConfigurationError, Limiter, Settings, SyncStore
from limiter.admin import admin_router
from limiter.fastapi import lifespan
from limiter.reconcile import Record
from limiter.reconcile.sources import MAX_LINE_BYTES, NDJSON
from limiter.testing import ManualClock
from tests.conftest import APP, BEIJING, Backend

TOKEN = "ops-token-0123456789abcdef"
BOT_TOKEN = "bot-token-fedcba9876543210"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BOT = {"Authorization": f"Bearer {BOT_TOKEN}"}
BASE = f"/admin/apps/{APP}"
SETTINGS = Settings(redis_url="memory://unused", cache_seconds=0)


def build_app(limiter: AsyncLimiter) -> FastAPI:
    """A host app that mounts the router and, on purpose, not limiter's exception handler."""

    app = FastAPI(lifespan=lifespan(engine=limiter))
    app.include_router(admin_router(tokens={"ops": TOKEN, "bot": BOT_TOKEN}), prefix="/admin")
    return app


@pytest.fixture
def client(backend: Backend, clock: ManualClock) -> Iterator[TestClient]:
    limiter = AsyncLimiter(AsyncStore(backend.async_client()), settings=SETTINGS, clock=clock)
    with TestClient(build_app(limiter)) as test_client:
        yield test_client


@pytest.fixture
def im(backend: Backend, clock: ManualClock) -> Iterator[Limiter]:
    """Another engine on the same data: the IM backend whose decisions the admin API steers."""
    engine = Limiter(SyncStore(backend.sync_client()), settings=SETTINGS, clock=clock)
    yield engine
    engine.close()


def field_of(answer: httpx.Response) -> str:
    """The bad field a 422 names: problem+json's ``field``, or the top-level field of FastAPI's
    validation ``loc`` (a union adds the member tried after it)."""
    assert answer.status_code == 422, answer.text
    body = answer.json()
    if answer.headers["content-type"] == "application/problem+json":
        return str(body["field"])
    return str(body["detail"][0]["loc"][1])


def state(client: TestClient) -> tuple[Any, Any]:
    """Everything an admin change could alter: the app view and its audit log."""
    return (
        client.get(BASE, headers=AUTH).json(),
        client.get(f"{BASE}/audit", headers=AUTH).json(),
    )


def go_pro(client: TestClient, purchased_on: str = "2026-11-03") -> dict[str, Any]:
    answer = client.put(
        f"{BASE}/edition", headers=AUTH, json={"edition": "pro", "purchased_on": purchased_on}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer "},
    ],
    ids=["none", "wrong", "prefix", "basic", "bare", "empty"],
)
def test_a_request_without_a_valid_token_is_401(client: TestClient, headers: dict[str, str]):
    for answer in (
        client.get(BASE, headers=headers),
        client.put(f"{BASE}/overrides/friends", headers=headers, json={"value": 1}),
    ):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["title"] == "Unauthorized"
    assert client.get(BASE, headers=AUTH).json()["overrides"] == []


def test_authentication_comes_before_validation(client: TestClient):
    answer = client.put(f"{BASE}/edition", json={"edition": 7, "bogus": True})
    assert answer.status_code == 401


def test_each_token_works_and_its_name_is_the_audited_actor(client: TestClient):
    assert client.put(f"{BASE}/overrides/users", headers=AUTH, json={"value": 10}).is_success
    assert client.put(f"{BASE}/overrides/users", headers=BOT, json={"value": 20}).is_success
    actors = [item["actor"] for item in client.get(f"{BASE}/audit", headers=AUTH).json()["items"]]
    assert actors == ["bot", "ops"]


def test_the_router_refuses_to_build_without_a_usable_token(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LIMITER_ADMIN_TOKENS", raising=False)
    with pytest.raises(ConfigurationError, match="no admin token"):
        admin_router(tokens={})
    with pytest.raises(ConfigurationError, match="no admin token"):
        admin_router(Settings(redis_url="memory://unused"))
    with pytest.raises(ConfigurationError, match="no admin token"):
        admin_router()
    for weak in ({"ops": "short-token"}, {"": TOKEN}, {"ops": TOKEN, "bot": ""}):
        with pytest.raises(ConfigurationError, match="at least 16 characters"):
            admin_router(tokens=weak)


def test_tokens_come_from_the_settings_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, backend: Backend, clock: ManualClock
):
    from_settings = admin_router(Settings(admin_tokens={"ops": TOKEN}))
    monkeypatch.setenv("LIMITER_ADMIN_TOKENS", json.dumps({"env-ops": BOT_TOKEN}))
    from_environment = admin_router()
    for router, headers, actor in (
        (from_settings, AUTH, "ops"),
        (from_environment, BOT, "env-ops"),
    ):
        app = FastAPI()
        app.state.limiter = AsyncLimiter(
            AsyncStore(backend.async_client()), settings=SETTINGS, clock=clock
        )
        app.include_router(router, prefix="/ops")
        with TestClient(app) as client:
            assert client.get(f"/ops/apps/{APP}").status_code == 401
            answer = client.put(
                f"/ops/apps/{APP}/overrides/users", headers=headers, json={"value": 1}
            )
            assert answer.status_code == 200
            audit = client.get(f"/ops/apps/{APP}/audit", headers=headers).json()
            assert audit["items"][0]["actor"] == actor
            client.portal.call(app.state.limiter.aclose)


def test_no_token_appears_in_an_answer_the_audit_or_the_logs(
    client: TestClient, caplog: pytest.LogCaptureFixture
):
    caplog.set_level("DEBUG")
    go_pro(client)
    answers = [
        client.get(BASE, headers={"Authorization": "Bearer not-the-token-000000"}),
        client.put(f"{BASE}/edition", headers=BOT, json={"edition": "pro", "months": 0}),
        client.post(f"{BASE}/expansions", headers=AUTH, json={"kind": "nope"}),
        client.get(f"{BASE}/audit", headers=AUTH),
        client.get("/openapi.json"),
    ]
    seen = "\n".join([*(answer.text for answer in answers), caplog.text])
    for secret in (TOKEN, BOT_TOKEN):
        assert secret not in seen


# -- the app view -----------------------------------------------------------------------------


def test_an_unknown_app_answers_its_default(client: TestClient):
    answer = client.get(BASE, headers=AUTH)
    assert answer.status_code == 200
    assert answer.json() == {
        "app_id": APP,
        "edition": "trial",
        "status": "active",
        "period": None,
        "expansions": [],
        "overrides": [],
        "limits": {
            "users": 100,
            "friends": 20,
            "groups_per_user": 50,
            "group_members": {"Private": 20, "Public": 20, "ChatRoom": 20, "AVChatRoom": None},
            "av_chatrooms": 10,
            "history_days": 7,
        },
        "usage": {"users": 0, "groups": 0, "av_chatrooms": 0},
    }


def test_the_view_counts_usage(client: TestClient, im: Limiter):
    im.register_users(APP, ["alice", "bob"])
    im.create_group(APP, "g1", "Work", owner="alice")
    im.create_group(APP, "room", "AVChatRoom", owner="bob")
    usage = client.get(BASE, headers=AUTH).json()["usage"]
    assert usage == {"users": 2, "groups": 2, "av_chatrooms": 1}


@pytest.mark.parametrize("app_id", ["1{4}", "x" * 65, "a b"])
def test_a_bad_app_id_is_422(client: TestClient, app_id: str):
    answer = client.get(f"/admin/apps/{app_id}", headers=AUTH)
    assert field_of(answer) == "app"


# -- edition ----------------------------------------------------------------------------------


def test_setting_pro_answers_the_app_view_with_its_period(client: TestClient):
    answer = client.put(
        f"{BASE}/edition",
        headers=AUTH,
        json={"edition": "pro", "purchased_on": "2026-11-03", "months": 2},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["edition"], body["status"]) == ("pro", "active")
    assert body["period"] == {"starts_on": "2026-11-03", "ends_on": "2027-01-02"}
    assert body["limits"]["users"] is None and body["limits"]["friends"] == 3000
    assert client.get(BASE, headers=AUTH).json() == body


def test_renewal_extends_from_the_day_after_the_end(client: TestClient):
    go_pro(client)
    answer = client.post(f"{BASE}/edition/renew", headers=AUTH, json={"months": 1})
    assert answer.status_code == 200
    assert answer.json()["period"] == {"starts_on": "2026-11-03", "ends_on": "2027-01-02"}
    assert client.post(f"{BASE}/edition/renew", headers=AUTH, json={}).json()["period"] == {
        "starts_on": "2026-11-03",
        "ends_on": "2027-02-02",
    }


def test_renewing_a_trial_app_is_409_and_changes_nothing(client: TestClient):
    before = state(client)
    answer = client.post(f"{BASE}/edition/renew", headers=AUTH, json={"months": 1})
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"
    assert "free edition 'trial'" in answer.json()["detail"]
    assert state(client) == before


def test_going_back_to_trial(client: TestClient):
    go_pro(client)
    answer = client.put(f"{BASE}/edition", headers=AUTH, json={"edition": "trial"})
    assert answer.status_code == 200
    assert (answer.json()["edition"], answer.json()["period"]) == ("trial", None)


def test_status_goes_to_grace_then_suspended_as_time_passes(client: TestClient, clock: ManualClock):
    go_pro(client, "2026-10-26")  # paid through 2026-11-25
    view = client.get(BASE, headers=AUTH).json()
    assert (view["status"], view["period"]["ends_on"]) == ("grace", "2026-11-25")
    assert view["limits"]["friends"] == 3000  # grace keeps the pro limits
    clock.set(datetime(2026, 11, 26, 23, 59, 59, tzinfo=BEIJING))
    assert client.get(BASE, headers=AUTH).json()["status"] == "grace"
    clock.set(datetime(2026, 11, 27, 0, 0, tzinfo=BEIJING))
    assert client.get(BASE, headers=AUTH).json()["status"] == "suspended"
    renewed = client.post(f"{BASE}/edition/renew", headers=AUTH, json={"months": 1}).json()
    assert renewed["status"] == "active"
    assert renewed["period"] == {"starts_on": "2026-11-27", "ends_on": "2026-12-26"}


# -- expansions -------------------------------------------------------------------------------


def test_an_expansion_is_added_listed_applied_and_removed(client: TestClient):
    go_pro(client)
    answer = client.post(
        f"{BASE}/expansions",
        headers=AUTH,
        json={"kind": "group_members_2000", "purchased_on": "2026-11-10", "months": 1},
    )
    assert answer.status_code == 201
    grant = answer.json()
    assert grant == {
        "id": grant["id"],
        "kind": "group_members_2000",
        "starts_on": "2026-11-10",
        "ends_on": "2026-12-09",
        "active": True,
        "days": None,
    }
    view = client.get(BASE, headers=AUTH).json()
    assert view["expansions"] == [grant]
    assert view["limits"]["group_members"] == {
        "Private": 2000,
        "Public": 2000,
        "ChatRoom": 2000,
        "AVChatRoom": None,
    }
    removed = client.delete(f"{BASE}/expansions/{grant['id']}", headers=AUTH)
    assert (removed.status_code, removed.content) == (204, b"")
    assert client.get(BASE, headers=AUTH).json()["limits"]["group_members"]["Public"] == 200
    again = client.delete(f"{BASE}/expansions/{grant['id']}", headers=AUTH)
    assert again.status_code == 404
    assert again.headers["content-type"] == "application/problem+json"


def test_a_history_extension_takes_its_days_and_an_ended_one_is_inactive(client: TestClient):
    go_pro(client)
    answer = client.post(
        f"{BASE}/expansions",
        headers=AUTH,
        json={"kind": "history_extension", "purchased_on": "2026-11-03", "days": 30},
    )
    assert (answer.status_code, answer.json()["days"]) == (201, 30)
    assert client.get(BASE, headers=AUTH).json()["limits"]["history_days"] == 30
    past = client.post(
        f"{BASE}/expansions",
        headers=AUTH,
        json={"kind": "av_chatrooms_unlimited", "purchased_on": "2026-09-01"},
    )
    assert past.json()["active"] is False
    assert client.get(BASE, headers=AUTH).json()["limits"]["av_chatrooms"] == 50


def test_a_purchase_whose_periods_end_after_9999_is_422(client: TestClient):
    answer = client.put(
        f"{BASE}/edition", headers=AUTH, json={"edition": "pro", "purchased_on": "9999-12-20"}
    )
    assert field_of(answer) == "purchased_on"


def test_a_trial_app_cannot_have_an_expansion_409(client: TestClient):
    before = state(client)
    answer = client.post(
        f"{BASE}/expansions",
        headers=AUTH,
        json={"kind": "group_members_2000", "purchased_on": "2026-11-10"},
    )
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == (
        f"expansion 'group_members_2000' needs edition pro; app '{APP}' is on 'trial'"
    )
    assert state(client) == before


# -- validation: 422 naming the field, nothing changed ------------------------------------------

GROUP_OVERRIDE = f"{BASE}/groups/g1/overrides/group_members"
OVERRIDE = f"{BASE}/overrides/friends"
EDITION = f"{BASE}/edition"
EXPANSIONS = f"{BASE}/expansions"
PRO = {"edition": "pro", "purchased_on": "2026-11-03"}
HISTORY = {"kind": "history_extension", "purchased_on": "2026-11-10"}
MEMBERS = {"kind": "group_members_2000", "purchased_on": "2026-11-10"}
INVALID = [
    ("put", f"{BASE}/overrides/members", {"value": 1}, "limit"),
    ("put", f"{BASE}/users/alice/overrides/users", {"value": 1}, "limit"),
    ("delete", f"{BASE}/overrides/members", None, "limit"),
    ("put", OVERRIDE, {"value": -1}, "value"),
    ("put", OVERRIDE, {"value": 1.5}, "value"),
    ("put", OVERRIDE, {}, "value"),
    ("put", OVERRIDE, {"value": 1, "max": 2}, "max"),
    ("put", OVERRIDE, {"value": 1, "expires_at": "2027-01-01T00:00"}, "expires_at"),
    ("put", f"{BASE}/users/{'u' * 33}/overrides/friends", {"value": 1}, "user"),
    ("put", GROUP_OVERRIDE, {"value": "lots"}, "value"),
    ("put", EDITION, {"edition": "gold"}, "edition"),
    ("put", EDITION, {"edition": "pro"}, "purchased_on"),
    ("put", EDITION, {"edition": "trial", "purchased_on": "2026-11-03"}, "purchased_on"),
    ("put", EDITION, {**PRO, "purchased_on": "2026-02-30"}, "purchased_on"),
    ("put", EDITION, {**PRO, "purchased_on": "03/11/2026"}, "purchased_on"),
    ("put", EDITION, {**PRO, "purchased_on": "2026-11-03T00:00:00"}, "purchased_on"),
    ("put", EDITION, {**PRO, "months": 0}, "months"),
    ("put", EDITION, {**PRO, "months": True}, "months"),
    ("put", EDITION, {**PRO, "plan": 1}, "plan"),
    ("post", f"{EDITION}/renew", {"months": 0}, "months"),
    ("post", EXPANSIONS, {**MEMBERS, "kind": "stickers"}, "kind"),
    ("post", EXPANSIONS, {"kind": "group_members_2000"}, "purchased_on"),
    ("post", EXPANSIONS, {**MEMBERS, "days": 30}, "days"),
    ("post", EXPANSIONS, {**HISTORY, "days": 400}, "days"),
    ("post", EXPANSIONS, {**HISTORY, "days": 7}, "days"),
    ("post", EXPANSIONS, HISTORY, "days"),
    ("delete", f"{EXPANSIONS}/{'e' * 65}", None, "id"),
    ("get", f"{BASE}/audit?limit=0", None, "limit"),
    ("get", f"{BASE}/audit?limit=1001", None, "limit"),
    ("get", f"{BASE}/usage?month=2026-13", None, "month"),
    ("get", f"{BASE}/bill?month=November", None, "month"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), INVALID)
def test_an_invalid_request_is_422_naming_the_field_and_changes_nothing(
    client: TestClient, method: str, path: str, body: dict[str, Any] | None, field: str
):
    go_pro(client)
    before = state(client)
    answer = client.request(method, path, headers=AUTH, json=body)
    assert field_of(answer) == field
    assert state(client) == before


# -- overrides --------------------------------------------------------------------------------


def test_overrides_for_the_app_a_user_and_a_group(client: TestClient, clock: ManualClock):
    app_wide = client.put(
        f"{BASE}/overrides/users",
        headers=AUTH,
        json={"value": 500, "expires_at": "2026-12-01T00:00:00+08:00"},
    )
    assert app_wide.status_code == 200
    assert app_wide.json() == {
        "scope": "app",
        "id": APP,
        "limit": "users",
        "value": 500,
        "expires_at": "2026-12-01T00:00:00+08:00",
        "active": True,
    }
    user = client.put(f"{BASE}/users/alice/overrides/friends", headers=AUTH, json={"value": None})
    assert user.json() == {
        "scope": "user",
        "id": "alice",
        "limit": "friends",
        "value": None,
        "expires_at": None,
        "active": True,
    }
    group = client.put(GROUP_OVERRIDE, headers=AUTH, json={"value": 30})
    assert (group.json()["scope"], group.json()["id"], group.json()["value"]) == ("group", "g1", 30)

    view = client.get(BASE, headers=AUTH).json()
    assert [(o["scope"], o["id"], o["limit"]) for o in view["overrides"]] == [
        ("app", APP, "users"),
        ("user", "alice", "friends"),
        ("group", "g1", "group_members"),
    ]
    assert view["limits"]["users"] == 500

    clock.set(datetime(2026, 12, 1, 0, 0, tzinfo=BEIJING))
    view = client.get(BASE, headers=AUTH).json()
    assert [o["active"] for o in view["overrides"]] == [False, True, True]
    assert view["limits"]["users"] == 100

    for path in (
        f"{BASE}/overrides/users",
        f"{BASE}/users/alice/overrides/friends",
        GROUP_OVERRIDE,
    ):
        assert client.delete(path, headers=AUTH).status_code == 204
        missing = client.delete(path, headers=AUTH)
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
    assert client.get(BASE, headers=AUTH).json()["overrides"] == []


def test_an_override_steers_the_engines_decisions(client: TestClient, im: Limiter):
    im.register_users(APP, ["alice", "bob", "carol"])
    client.put(f"{BASE}/users/alice/overrides/friends", headers=AUTH, json={"value": 1})
    assert im.add_friends(APP, "alice", ["bob", "carol"]).added == ("bob",)
    client.put(f"{BASE}/users/alice/overrides/friends", headers=AUTH, json={"value": 2})
    assert im.add_friends(APP, "alice", ["carol"]).added == ("carol",)


# -- reports ----------------------------------------------------------------------------------


def test_over_limit_lists_what_a_lowered_limit_left_above_it(client: TestClient, im: Limiter):
    im.register_users(APP, ["alice", "bob", "carol", "dave"])
    im.add_friends(APP, "alice", ["bob", "carol", "dave"])
    im.create_group(APP, "g1", "Public", owner="alice", members=["bob", "carol"])
    assert client.get(f"{BASE}/over-limit", headers=AUTH).json() == {"items": []}

    client.put(f"{BASE}/users/alice/overrides/friends", headers=AUTH, json={"value": 2})
    client.put(GROUP_OVERRIDE, headers=AUTH, json={"value": 2})
    client.put(f"{BASE}/overrides/users", headers=AUTH, json={"value": 3})
    answer = client.get(f"{BASE}/over-limit", headers=AUTH)
    assert answer.status_code == 200
    assert answer.json() == {
        "items": [
            {"scope": "app", "id": APP, "limit": "users", "current": 4, "maximum": 3},
            {"scope": "user", "id": "alice", "limit": "friends", "current": 3, "maximum": 2},
            {"scope": "group", "id": "g1", "limit": "group_members", "current": 3, "maximum": 2},
        ]
    }
    assert im.add_friends(APP, "bob", ["carol"]).added == ("carol",)  # nobody was evicted


def test_audit_is_newest_first_with_actor_before_and_after(client: TestClient, clock: ManualClock):
    client.put(f"{BASE}/overrides/friends", headers=AUTH, json={"value": 30})
    clock.set(datetime(2026, 11, 26, 13, 0, tzinfo=BEIJING))
    client.put(f"{BASE}/overrides/friends", headers=BOT, json={"value": 40})
    client.delete(f"{BASE}/overrides/friends", headers=AUTH)

    answer = client.get(f"{BASE}/audit", headers=AUTH)
    assert answer.status_code == 200
    assert answer.json() == {
        "items": [
            {
                "at": "2026-11-26T13:00:00+08:00",
                "actor": "ops",
                "action": "clear_override",
                "field": "override:app:friends",
                "before": {"value": 40, "expires_at": None},
                "after": None,
            },
            {
                "at": "2026-11-26T13:00:00+08:00",
                "actor": "bot",
                "action": "set_override",
                "field": "override:app:friends",
                "before": {"value": 30, "expires_at": None},
                "after": {"value": 40, "expires_at": None},
            },
            {
                "at": "2026-11-26T12:00:00+08:00",
                "actor": "ops",
                "action": "set_override",
                "field": "override:app:friends",
                "before": None,
                "after": {"value": 30, "expires_at": None},
            },
        ]
    }
    latest = client.get(f"{BASE}/audit", headers=AUTH, params={"limit": 1}).json()["items"]
    assert [item["action"] for item in latest] == ["clear_override"]


# -- reconcile --------------------------------------------------------------------------------

# The IM's own data. Live before (see ``live``): accounts alice, bob, carol; alice <-> bob;
# g1 (Public) = alice (owner), bob; the AV room "room" = alice. The source drops carol, adds
# dave, dave -> alice (one way) and dave in g1, and keeps the room.
SOURCE: dict[str, Any] = {
    "accounts": ["alice", "bob", "dave"],
    "friendships": [
        {"user": "alice", "friend": "bob", "both_ways": True},
        {"user": "dave", "friend": "alice"},
    ],
    "groups": [
        {"id": "g1", "type": "Public", "owner": "alice", "members": ["bob", "dave"]},
        {"id": "room", "type": "AVChatRoom", "owner": "alice"},
    ],
}
SOURCE_LINES = [
    {"account": "alice"},
    {"account": "bob"},
    {"account": "dave"},
    {"friendship": {"user": "alice", "friend": "bob", "both_ways": True}},
    {"friendship": {"user": "dave", "friend": "alice"}},
    {"group": {"id": "g1", "type": "Public", "owner": "alice", "members": ["bob"]}},
    {"group": {"id": "g1", "type": "Public", "members": ["dave"]}},  # a group in two parts
    {"group": {"id": "room", "type": "AVChatRoom", "owner": "alice"}},
]
# Counted by hand: accounts 3 -> 3 (+dave, -carol); friendship entries a->b, b->a, then
# d->a too; groups g1 and room on both sides; memberships g1: alice, bob (+dave) and room: alice.
EXPECTED_REPORT = {
    "app_id": APP,
    "accounts": {"before": 3, "after": 3, "added": 1, "removed": 1},
    "friendships": {"before": 2, "after": 3, "added": 1, "removed": 0},
    "groups": {"before": 2, "after": 2, "added": 0, "removed": 0},
    "memberships": {"before": 3, "after": 4, "added": 1, "removed": 0},
    "av_chatrooms": {"before": 1, "after": 1, "added": 0, "removed": 0},
    "groups_retyped": 0,
    "changes": [
        {"scope": "group", "id": "g1", "count": "group_members", "before": 2, "after": 3},
        {"scope": "user", "id": "dave", "count": "friends", "before": 0, "after": 1},
        {"scope": "user", "id": "dave", "count": "groups_per_user", "before": 0, "after": 1},
    ],
    "changes_total": 3,
    "truncated": False,
    "orphans": {"accounts": 0, "friendships": 0, "memberships": 0, "ids": []},
}


@pytest.fixture
def live(im: Limiter) -> Limiter:
    im.register_users(APP, ["alice", "bob", "carol"])
    im.add_friends(APP, "alice", ["bob"])
    im.create_group(APP, "g1", "Public", owner="alice", members=["bob"])
    im.create_group(APP, "room", "AVChatRoom", owner="alice")
    return im


def ndjson(lines: list[Any]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def assert_reconciled(client: TestClient, live: Limiter) -> None:
    assert client.get(BASE, headers=AUTH).json()["usage"] == {
        "users": 3,
        "groups": 2,
        "av_chatrooms": 1,
    }
    assert live.user_usage(APP, "dave").friends == 1
    assert live.group_usage(APP, "g1").members == 3  # type: ignore[union-attr]
    entry = client.get(f"{BASE}/audit", headers=AUTH, params={"limit": 1}).json()["items"][0]
    assert (entry["actor"], entry["action"]) == ("ops", "reconcile")


def test_reconcile_from_a_json_document(client: TestClient, live: Limiter):
    answer = client.post(f"{BASE}/reconcile", headers=AUTH, json=SOURCE)
    assert answer.status_code == 200, answer.text
    assert answer.json() == EXPECTED_REPORT
    assert_reconciled(client, live)


def test_reconcile_from_ndjson_lines(client: TestClient, live: Limiter):
    answer = client.post(
        f"{BASE}/reconcile",
        headers={**AUTH, "Content-Type": NDJSON},
        content=ndjson(SOURCE_LINES[:3]) + b"\n  \n" + ndjson(SOURCE_LINES[3:]),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == EXPECTED_REPORT
    assert_reconciled(client, live)


@pytest.mark.parametrize(
    ("content_type", "body", "field"),
    [
        (NDJSON, ndjson(SOURCE_LINES[:2]) + b"\n" + b'{"acount": "x"}\n', "line 4.acount"),
        (NDJSON, ndjson(SOURCE_LINES[:4]) + b"{oops\n", "line 5"),
        (NDJSON, b'{"account": "alice", "group": {"id": "g", "type": "Public"}}\n', "line 1"),
        (NDJSON, ndjson([{"group": {"id": "g9", "type": "Club"}}]), "line 1.type"),
        (NDJSON, ndjson(SOURCE_LINES[:2]) + b'{"account": ""}\n', "line 3.accounts"),
        (NDJSON, b"[" * 100_000 + b"]" * 100_000 + b"\n", "line 1"),
        ("application/json", b"{oops", "body"),
        ("application/json", b"[" * 100_000 + b"]" * 100_000, "body"),
        ("application/json", json.dumps({**SOURCE, "users": []}).encode(), "body.users"),
        ("application/json", json.dumps({"groups": [{"id": "g"}]}).encode(), "body.groups.0.type"),
        (
            "application/json",
            json.dumps(
                {"groups": [{"id": "g", "type": "Public"}, {"id": "h", "type": "Club"}]}
            ).encode(),
            "groups.1.type",
        ),
    ],
    ids=[
        "unknown-field",
        "bad-json",
        "two-records",
        "group-type",
        "empty-account",
        "deep-line",
        "json",
        "deep-json",
        "extra",
        "missing",
        "document-group-type",
    ],
)
def test_a_bad_reconcile_source_is_422_naming_where_and_changes_nothing(
    client: TestClient, live: Limiter, content_type: str, body: bytes, field: str
):
    before = state(client)
    answer = client.post(
        f"{BASE}/reconcile", headers={**AUTH, "Content-Type": content_type}, content=body
    )
    assert field_of(answer) == field
    assert state(client) == before
    assert live.user_usage(APP, "alice").friends == 1


def test_reconcile_takes_only_json_or_ndjson(client: TestClient, live: Limiter):
    answer = client.post(
        f"{BASE}/reconcile", headers={**AUTH, "Content-Type": "text/csv"}, content=b"alice\n"
    )
    assert answer.status_code == 415
    assert answer.headers["content-type"] == "application/problem+json"


class RecordSpy(AsyncLimiter):
    """An engine that notes each record as the reconcile reads it."""

    def __init__(self, events: list[str], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events = events

    async def reconcile(self, app: str, records: Any, *, actor: str = "python") -> Any:
        async def noted() -> AsyncIterator[Record]:
            async for record in records:
                self.events.append(f"record {record}")
                yield record

        return await super().reconcile(app, noted(), actor=actor)


def test_an_ndjson_body_is_parsed_as_it_streams_in(
    backend: Backend, clock: ManualClock, live: Limiter
):
    body = ndjson(SOURCE_LINES)
    cut = [0, 10, 25, 40, 90, 200, len(body)]  # chunks ending inside lines and at one's end
    events: list[str] = []

    async def chunks() -> AsyncIterator[bytes]:
        for number, (start, end) in enumerate(pairwise(cut)):
            events.append(f"chunk {number}")
            yield body[start:end]

    async def post() -> httpx.Response:
        engine = RecordSpy(
            events, AsyncStore(backend.async_client()), settings=SETTINGS, clock=clock
        )
        app = build_app(engine)
        app.state.limiter = engine  # ASGITransport runs no lifespan
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as http:
            answer = await http.post(
                f"{BASE}/reconcile", headers={**AUTH, "Content-Type": NDJSON}, content=chunks()
            )
        await engine.aclose()
        return answer

    answer = asyncio.run(post())
    assert answer.status_code == 200, answer.text
    assert answer.json() == EXPECTED_REPORT
    assert events[:5] == [
        "chunk 0",
        "chunk 1",
        "record AccountRecord(id='alice')",
        "chunk 2",
        "record AccountRecord(id='bob')",
    ]
    assert events.index("record AccountRecord(id='dave')") < events.index("chunk 4")


# -- usage and bill ---------------------------------------------------------------------------


def test_monthly_usage_and_bill(client: TestClient, im: Limiter, clock: ManualClock):
    go_pro(client, "2026-11-03")
    client.post(
        f"{BASE}/expansions",
        headers=AUTH,
        json={"kind": "group_members_2000", "purchased_on": "2026-11-10"},
    )
    im.register_users(APP, ["alice", "bob", "carol"])
    im.create_group(APP, "room", "AVChatRoom", owner="alice")
    for user in ("alice", "bob", "carol", "alice"):
        im.record_login(APP, user)
    im.record_bandwidth(APP, "2.5")
    clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=BEIJING))
    im.record_login(APP, "bob")

    usage = client.get(f"{BASE}/usage", headers=AUTH, params={"month": "2026-11"})
    assert usage.status_code == 200
    assert usage.json() == {
        "app_id": APP,
        "month": "2026-11",
        "dau": [{"day": "2026-11-26", "users": 3}],
        "peak_dau": {"users": 3, "day": "2026-11-26"},
        "peak_groups": {"groups": 1, "day": "2026-11-26"},
        "bandwidth": [{"day": "2026-11-26", "mbps": 2.5}],
    }
    this_month = client.get(f"{BASE}/usage", headers=AUTH).json()  # the clock's month
    assert (this_month["month"], this_month["dau"]) == (
        "2026-12",
        [{"day": "2026-12-02", "users": 1}],
    )

    bill = client.get(f"{BASE}/bill", headers=AUTH, params={"month": "2026-11"})
    assert bill.status_code == 200
    assert bill.json() == {
        "app_id": APP,
        "month": "2026-11",
        "currency": "CNY",
        "items": [
            {
                "item": "package:pro",
                "quantity": 1,
                "unit_price": 999.0,
                "amount": 999.0,
                "detail": "1 period of pro bought: 2026-11-03 (1 month)",
            },
            {
                "item": "expansion:group_members_2000",
                "quantity": 1,
                "unit_price": 500.0,
                "amount": 500.0,
                "detail": "1 period bought: 2026-11-10 (1 month, through 2026-12-09)",
            },
            {
                "item": "av_bandwidth",
                "quantity": 3,
                "unit_price": 2.0,
                "amount": 6.0,
                "detail": "3 Mbps-days over 1 day: each day's peak bandwidth rounded up to "
                "started blocks of Mbps",
            },
        ],
        "total": 1505.0,
    }
    december = client.get(f"{BASE}/bill", headers=AUTH).json()
    assert (december["month"], december["items"], december["total"]) == ("2026-12", [], 0.0)


# -- errors without the host's handler ----------------------------------------------------------


def test_a_store_outage_is_503_problem_json(clock: ManualClock):
    limiter = AsyncLimiter.from_settings(Settings(redis_url="redis://127.0.0.1:1/0"), clock=clock)
    with TestClient(build_app(limiter)) as client:
        answer = client.get(BASE, headers=AUTH)
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "1"


def test_an_app_without_an_engine_is_500_problem_json():
    app = FastAPI()
    app.include_router(admin_router(tokens={"ops": TOKEN}), prefix="/admin")
    with TestClient(app) as client:
        answer = client.get(BASE, headers=AUTH)
    assert answer.status_code == 500
    assert "app.state.limiter" in answer.json()["detail"]


def test_the_router_mounts_under_any_prefix_and_documents_itself(client: TestClient):
    schema = client.get("/openapi.json").json()
    operations = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) == 17
    for path, _, operation in operations:
        assert path == "/admin/health" or path.startswith("/admin/apps/{app_id}")
        assert operation["tags"] == ["admin"]
        assert operation["summary"]
        assert operation["security"] == [{"AdminToken": []}]
        assert {"401", "422"} <= set(operation["responses"])
        # FastAPI adds its own 422 (application/json) to an operation that takes input.
        fastapi_422 = {"application/json"} if path != "/admin/health" else set()
        assert set(operation["responses"]["422"]["content"]) == {
            *fastapi_422,
            "application/problem+json",
        }
    reconcile = schema["paths"]["/admin/apps/{app_id}/reconcile"]["post"]
    assert set(reconcile["requestBody"]["content"]) == {"application/json", NDJSON}


def test_an_endless_ndjson_line_is_refused_not_buffered(client: TestClient, live: Limiter):
    before = state(client)

    def endless() -> Iterator[bytes]:
        yield b'{"account": "'
        for _ in range(MAX_LINE_BYTES // 65536 + 2):
            yield b"x" * 65536

    answer = client.post(
        f"{BASE}/reconcile", headers={**AUTH, "Content-Type": NDJSON}, content=endless()
    )
    assert field_of(answer) == "body"
    assert "longer than" in answer.json()["detail"]
    assert state(client) == before


@pytest.mark.parametrize(
    "body", [b"\xff", b'{"edition": "\xff"}'], ids=["not UTF-8", "not UTF-8 inside JSON"]
)
def test_a_body_that_is_not_utf8_gets_a_422_without_echoing_it(
    client: TestClient, body: bytes
) -> None:
    before = state(client)

    answer = client.put(f"{BASE}/edition", content=body, headers=AUTH)

    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body"]
    assert state(client) == before
