"""The HTTP surfaces of metering: the IM callback router, the login and history dependencies,
and the Prometheus endpoint, over both stores. Accounts first: only registered accounts' logins
count, so the tests register the users they log in, as the app would (register_users)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from limiter import AsyncLimiter, AsyncStore, Settings
from limiter.callbacks import callback_router, expected_sign
from limiter.fastapi import HistoryStart, RecordLogin, install_exception_handler, lifespan
from limiter.metering import LoginRecorded
from limiter.metrics import metrics_router
from limiter.testing import ManualClock
from tests.conftest import APP, BEIJING, Backend

TOKEN = "callback-token-0123456789"
Login = Annotated[LoginRecorded, Depends(RecordLogin(user="UserID"))]
Since = Annotated[datetime | None, Depends(HistoryStart(start="MinTime"))]
StrictSince = Annotated[datetime | None, Depends(HistoryStart(start="MinTime", refuse=True))]


def build_app(limiter: AsyncLimiter, token: str | None) -> FastAPI:
    app = FastAPI(lifespan=lifespan(engine=limiter))
    install_exception_handler(app)
    app.include_router(callback_router(token=token), prefix="/callback")
    app.include_router(metrics_router())

    @app.post("/login")
    async def login(recorded: Login) -> dict[str, Any]:
        return {"counted": recorded.counted, "dau": recorded.dau}

    @app.post("/history")
    async def history(since: Since) -> dict[str, Any]:
        return {"since": None if since is None else since.isoformat()}

    @app.post("/history/strict")
    async def strict_history(since: StrictSince) -> dict[str, Any]:
        return {"since": None if since is None else since.isoformat()}

    return app


@pytest.fixture
def limiter(backend: Backend, clock: ManualClock) -> AsyncLimiter:
    settings = Settings(redis_url="memory://unused", cache_seconds=0)
    return AsyncLimiter(AsyncStore(backend.async_client()), settings=settings, clock=clock)


@pytest.fixture
def client(limiter: AsyncLimiter) -> Iterator[TestClient]:
    with TestClient(build_app(limiter, None), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def signed_client(limiter: AsyncLimiter) -> Iterator[TestClient]:
    with TestClient(build_app(limiter, TOKEN), raise_server_exceptions=False) as test_client:
        yield test_client


def state_change(user: str, action: str = "Login", event_ms: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "CallbackCommand": "State.StateChange",
        "Info": {"Action": action, "To_Account": user, "Reason": "Register"},
    }
    if event_ms is not None:
        body["EventTime"] = event_ms
    return body


def query(**extra: str) -> dict[str, str]:
    return {
        "SdkAppid": APP,
        "CallbackCommand": "State.StateChange",
        "contenttype": "json",
        "ClientIP": "10.0.0.1",
        "OptPlatform": "iOS",
        **extra,
    }


OK = {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}


def usage(client: TestClient, day: date) -> int:
    limiter: AsyncLimiter = client.app.state.limiter  # type: ignore[attr-defined]
    month = client.portal.call(limiter.monthly_usage, APP, f"{day:%Y-%m}")  # type: ignore[union-attr]
    return month.dau.get(day, 0)


def register(client: TestClient, *users: str) -> None:
    """Register accounts the way the app does, before their logins arrive."""
    limiter: AsyncLimiter = client.app.state.limiter  # type: ignore[attr-defined]
    portal = client.portal
    assert portal is not None
    result = portal.call(lambda: limiter.register_users(APP, list(users)))
    assert result.added == users


# -- the callback router -------------------------------------------------------------------


def test_logins_count_once_per_user_and_day(client: TestClient):
    register(client, "u1", "u2")
    for user in ("u1", "u2", "u1", "u1"):
        answer = client.post("/callback", params=query(), json=state_change(user))
        assert answer.status_code == 200 and answer.json() == OK
    assert usage(client, date(2026, 11, 26)) == 2


def test_a_login_of_a_user_that_is_not_an_account_is_answered_ok_and_not_counted(
    client: TestClient,
):
    register(client, "u1")
    client.post("/callback", params=query(), json=state_change("u1"))
    for _ in range(2):
        answer = client.post("/callback", params=query(), json=state_change("stranger"))
        assert answer.status_code == 200 and answer.json() == OK
    assert usage(client, date(2026, 11, 26)) == 1
    # its login through the dependency is not counted either
    assert client.post("/login", params={"sdkappid": APP}, json={"UserID": "stranger"}).json() == {
        "counted": False,
        "dau": 1,
    }


def test_logout_and_disconnect_do_not_count(client: TestClient):
    register(client, "u1")
    for action in ("Logout", "Disconnect"):
        answer = client.post("/callback", params=query(), json=state_change("u1", action))
        assert answer.json() == OK
    assert usage(client, date(2026, 11, 26)) == 0


def test_event_time_decides_the_day(client: TestClient, clock: ManualClock):
    register(client, "u1")
    # 2026-11-25 23:59:59 Beijing, arriving at 00:05 on the 26th: within the late window.
    clock.set(datetime(2026, 11, 26, 0, 5, tzinfo=BEIJING))
    late_evening = int(datetime(2026, 11, 25, 23, 59, 59, tzinfo=BEIJING).timestamp() * 1000)
    client.post("/callback", params=query(), json=state_change("u1", event_ms=late_evening))
    assert usage(client, date(2026, 11, 25)) == 1
    assert usage(client, date(2026, 11, 26)) == 0


def test_query_command_wins_over_the_body(client: TestClient):
    register(client, "u1")
    other = client.post(
        "/callback",
        params=query(CallbackCommand="Group.CallbackAfterNewMemberJoin"),
        json=state_change("u1"),
    )
    assert other.json() == OK
    assert usage(client, date(2026, 11, 26)) == 0


def test_unknown_commands_are_answered_ok_and_ignored(client: TestClient):
    answer = client.post(
        "/callback",
        params=query(CallbackCommand="C2C.CallbackAfterSendMsg"),
        json={"CallbackCommand": "C2C.CallbackAfterSendMsg", "anything": [1, 2]},
    )
    assert answer.json() == OK


@pytest.mark.parametrize(
    ("params", "body", "field"),
    [
        (query(), b"{not json", "body"),
        (query(), b"[1, 2]", "body"),
        (query(), b'{"CallbackCommand": "State.StateChange"}', "Info"),
        (query(), b'{"Info": {"To_Account": "u1"}}', "Info.Action"),
        (query(), b'{"Info": {"Action": "Login", "To_Account": 7}}', "Info.To_Account"),
        (query(), b'{"Info": {"Action": "Login", "To_Account": ""}}', "user"),
        (
            query(),
            b'{"EventTime": "soon", "Info": {"Action": "Login", "To_Account": "u"}}',
            "EventTime",
        ),
        (
            query(),
            b'{"EventTime": 1e400, "Info": {"Action": "Login", "To_Account": "u"}}',
            "EventTime",
        ),
        ({**query(), "SdkAppid": "1{2}"}, b"{}", "app"),
        ({k: v for k, v in query().items() if k != "SdkAppid"}, b"{}", "app"),
    ],
)
def test_malformed_callbacks_get_a_fail_answer_not_a_500(
    client: TestClient, params: dict[str, str], body: bytes, field: str
):
    register(client, "u1", "u")
    answer = client.post("/callback", params=params, content=body)
    assert answer.status_code == 200
    payload = answer.json()
    assert payload["ActionStatus"] == "FAIL" and payload["ErrorCode"] != 0
    assert payload["ErrorInfo"].startswith(field + ":")
    assert usage(client, date(2026, 11, 26)) == 0


def test_a_login_from_the_future_is_refused(client: TestClient, clock: ManualClock):
    register(client, "u1")
    ahead = int((clock.now() + timedelta(hours=1)).timestamp() * 1000)
    answer = client.post("/callback", params=query(), json=state_change("u1", event_ms=ahead))
    assert answer.json()["ActionStatus"] == "FAIL"
    assert "future" in answer.json()["ErrorInfo"]


def signed(clock: ManualClock, token: str = TOKEN, skew: int = 0) -> dict[str, str]:
    request_time = str(int(clock.now().timestamp()) + skew)
    return query(RequestTime=request_time, Sign=expected_sign(token, request_time))


def test_signed_callbacks_are_counted(signed_client: TestClient, clock: ManualClock):
    register(signed_client, "u1")
    answer = signed_client.post("/callback", params=signed(clock), json=state_change("u1"))
    assert answer.json() == OK
    assert usage(signed_client, date(2026, 11, 26)) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: {k: v for k, v in p.items() if k != "Sign"},
        lambda p: {k: v for k, v in p.items() if k != "RequestTime"},
        lambda p: {**p, "Sign": "0" * 64},
        lambda p: {**p, "RequestTime": str(int(p["RequestTime"]) + 1)},
        lambda p: {**p, "RequestTime": "yesterday"},
    ],
)
def test_unsigned_or_tampered_callbacks_fail_and_count_nothing(
    signed_client: TestClient, clock: ManualClock, tamper
):
    register(signed_client, "u1")
    answer = signed_client.post("/callback", params=tamper(signed(clock)), json=state_change("u1"))
    assert answer.status_code == 200 and answer.json()["ActionStatus"] == "FAIL"
    assert TOKEN not in answer.text
    assert usage(signed_client, date(2026, 11, 26)) == 0


@pytest.mark.parametrize("sign", ["é" * 64, "\u2603", "0" * 63 + "é"])
def test_a_non_ascii_signature_fails_cleanly(signed_client: TestClient, clock: ManualClock, sign):
    params = {**signed(clock), "Sign": sign}
    answer = signed_client.post("/callback", params=params, json=state_change("u1"))
    assert answer.status_code == 200
    assert answer.json()["ErrorInfo"] == "Sign: does not match"


def test_deeply_nested_json_gets_a_fail_answer(client: TestClient):
    answer = client.post("/callback", params=query(), content=b"[" * 100_000 + b"]" * 100_000)
    assert answer.status_code == 200
    assert answer.json()["ErrorInfo"] == "body: is not valid JSON"
    deep_login = client.post(
        "/login", params={"sdkappid": APP}, content=b"[" * 100_000 + b"]" * 100_000
    )
    assert deep_login.status_code == 422 and deep_login.json()["field"] == "body"


@pytest.mark.parametrize("skew", [-61, 61])
def test_a_stale_signature_fails(signed_client: TestClient, clock: ManualClock, skew: int):
    answer = signed_client.post(
        "/callback", params=signed(clock, skew=skew), json=state_change("u1")
    )
    assert answer.json()["ActionStatus"] == "FAIL"
    assert "RequestTime" in answer.json()["ErrorInfo"]


def test_a_signature_with_another_token_fails(signed_client: TestClient, clock: ManualClock):
    params = signed(clock, token="another-token-0123456789")
    answer = signed_client.post("/callback", params=params, json=state_change("u1"))
    assert answer.json()["ErrorInfo"] == "Sign: does not match"


def test_unauthenticated_router_warns_once_at_build(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING, logger="limiter.callbacks"):
        callback_router(Settings(redis_url="memory://unused"))
        callback_router(token=TOKEN)
    warnings = [r for r in caplog.records if "not authenticated" in r.getMessage()]
    assert len(warnings) == 1


def test_callback_token_comes_from_settings(limiter: AsyncLimiter, clock: ManualClock):
    router = callback_router(Settings(redis_url="memory://unused", callback_token=TOKEN))
    app = build_app(limiter, TOKEN)
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", "") != "/callback"]
    app.include_router(router, prefix="/callback")
    with TestClient(app) as client:
        register(client, "u1")
        unsigned = client.post("/callback", params=query(), json=state_change("u1"))
        assert unsigned.json()["ErrorInfo"].startswith("Sign:")
        good = client.post("/callback", params=signed(clock), json=state_change("u1"))
        assert good.json() == OK
        assert usage(client, date(2026, 11, 26)) == 1


def test_store_outage_answers_503_with_the_fail_body(clock: ManualClock):
    limiter = AsyncLimiter.from_settings(Settings(redis_url="redis://127.0.0.1:1/0"), clock=clock)
    with TestClient(build_app(limiter, None)) as client:
        answer = client.post("/callback", params=query(), json=state_change("u1"))
    assert answer.status_code == 503
    assert answer.json()["ActionStatus"] == "FAIL"


# -- dependencies ------------------------------------------------------------------------------


def test_record_login_dependency(client: TestClient):
    register(client, "u1", "u2")
    first = client.post("/login", params={"sdkappid": APP}, json={"UserID": "u1"})
    again = client.post("/login", params={"sdkappid": APP, "UserID": "u1"})
    other = client.post("/login", headers={"X-App-Id": APP}, json={"UserID": "u2"})
    assert first.json() == {"counted": True, "dau": 1}
    assert again.json() == {"counted": False, "dau": 1}
    assert other.json() == {"counted": True, "dau": 2}
    missing = client.post("/login", params={"sdkappid": APP}, json={})
    assert missing.status_code == 422 and missing.json()["field"] == "UserID"


def test_history_start_is_clamped_to_the_retention(client: TestClient, clock: ManualClock):
    cutoff = clock.now() - timedelta(days=7)
    old = int((clock.now() - timedelta(days=30)).timestamp())
    recent = clock.now() - timedelta(days=2)
    clamped = client.post("/history", params={"sdkappid": APP}, json={"MinTime": old})
    assert datetime.fromisoformat(clamped.json()["since"]) == cutoff
    kept = client.post("/history", params={"sdkappid": APP}, json={"MinTime": recent.isoformat()})
    assert datetime.fromisoformat(kept.json()["since"]) == recent
    absent = client.post("/history", params={"sdkappid": APP}, json={})
    assert datetime.fromisoformat(absent.json()["since"]) == cutoff


def test_history_start_can_refuse_instead(client: TestClient, clock: ManualClock):
    old = int((clock.now() - timedelta(days=30)).timestamp())
    refused = client.post("/history/strict", params={"sdkappid": APP}, json={"MinTime": old})
    assert refused.status_code == 422
    assert refused.json()["field"] == "MinTime"
    assert "oldest history" in refused.json()["detail"]
    bad = client.post("/history/strict", params={"sdkappid": APP}, json={"MinTime": "noon"})
    assert bad.status_code == 422 and bad.json()["field"] == "MinTime"


def test_history_extension_widens_the_window(client: TestClient, clock: ManualClock):
    limiter: AsyncLimiter = client.app.state.limiter  # type: ignore[attr-defined]
    portal = client.portal
    assert portal is not None
    portal.call(lambda: limiter.set_edition(APP, "pro", purchased_on=date(2026, 11, 3)))
    portal.call(lambda: limiter.add_expansion(APP, "history_extension", date(2026, 11, 3), days=30))
    old = int((clock.now() - timedelta(days=29)).timestamp())
    kept = client.post("/history/strict", params={"sdkappid": APP}, json={"MinTime": old})
    assert kept.status_code == 200
    assert datetime.fromisoformat(kept.json()["since"]) == datetime.fromtimestamp(old, UTC)


# -- metrics -----------------------------------------------------------------------------------


def test_metrics_expose_decisions_errors_latency_and_changes(client: TestClient):
    limiter: AsyncLimiter = client.app.state.limiter  # type: ignore[attr-defined]
    portal = client.portal
    assert portal is not None
    portal.call(lambda: limiter.register_users(APP, [f"u{i}" for i in range(101)]))
    portal.call(lambda: limiter.set_override(APP, "friends", 5, actor="ops"))
    body = client.get("/metrics").text
    assert 'limiter_decisions_total{limit="users",outcome="allowed"} 100.0' in body
    assert 'limiter_decisions_total{limit="users",outcome="refused"} 1.0' in body
    assert 'limiter_admin_changes_total{action="set_override"} 1.0' in body
    assert 'limiter_store_seconds_count{operation="register_users"} 1.0' in body
    assert 'limiter_store_seconds_bucket{le="+Inf",operation="plan_write"} 1.0' in body


def test_metrics_count_store_errors(clock: ManualClock):
    limiter = AsyncLimiter.from_settings(Settings(redis_url="redis://127.0.0.1:1/0"), clock=clock)
    with TestClient(build_app(limiter, None)) as client:
        client.post("/login", params={"sdkappid": APP}, json={"UserID": "u1"})
        body = client.get("/metrics").text
    # the engine's first request checks the data set's marker first (limiter.marker): that
    # round trip meets the outage, and the login is refused without a second one
    assert 'limiter_store_errors_total{operation="marker"} 1.0' in body
