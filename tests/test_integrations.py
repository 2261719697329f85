"""FastAPI dependencies and exception handler, and the plain decorator, over both stores.

Accounts first: relations name only registered accounts, so the HTTP tests register theirs
through the app's own ``/accounts`` endpoint (a guarded register_users) before relating them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, HTTPException
from fastapi.testclient import TestClient

from limiter import (
    AsyncLimiter,
    AsyncStore,
    Limiter,
    Refused,
    Reservation,
    Settings,
    SyncStore,
    guard,
)
from limiter.fastapi import (
    AppLimiter,
    BoundLimiter,
    Reserve,
    install_exception_handler,
    lifespan,
    limiter_lifespan,
)
from tests.conftest import APP, Backend, Enroll

Handle = Annotated[BoundLimiter, Depends(AppLimiter())]
GroupJoin = Annotated[
    Reservation, Depends(Reserve("add_members", group="group_id", users="members"))
]
MaybeHandle = Annotated[BoundLimiter | None, Depends(AppLimiter(auto_error=False))]
Accounts = Annotated[Reservation, Depends(Reserve("register_users", users="users"))]
FriendAdd = Annotated[Reservation, Depends(Reserve("add_friends", user="user", peers="peers"))]


class Failure(Exception):
    """The handler's own work failed after the reservation."""


def build_app(limiter: AsyncLimiter) -> FastAPI:
    app = FastAPI(lifespan=lifespan(engine=limiter))
    install_exception_handler(app)

    @app.post("/groups/{group_id}/members")
    async def join(
        group_id: str,
        reservation: GroupJoin,
        fail: bool = False,
    ) -> dict[str, Any]:
        if fail:
            raise Failure("the database write failed")
        return {"added": list(reservation.result.added)}

    @app.post("/groups")
    async def create(body: dict[str, Any], limits: Handle) -> dict[str, Any]:
        created = await limits.create_group(body["group"], body["type"], body["owner"])
        return {"members": created.members}

    @app.post("/friends/{user}")
    async def befriend(
        user: str,
        reservation: FriendAdd,
    ) -> dict[str, Any]:
        raise HTTPException(409, "the IM rejected it")

    @app.post("/accounts")
    async def accounts(reservation: Accounts) -> dict[str, Any]:
        return {"added": list(reservation.result.added)}

    @app.get("/usage/{user}")
    async def usage(user: str, limits: Handle) -> dict[str, Any]:
        found = await limits.user_usage(user)
        return {"friends": found.friends, "groups": found.groups}

    return app


@pytest.fixture
def client(backend: Backend, clock) -> Iterator[TestClient]:
    limiter = AsyncLimiter(
        AsyncStore(backend.async_client()), settings=Settings(cache_seconds=0), clock=clock
    )
    with TestClient(build_app(limiter), raise_server_exceptions=False) as test_client:
        yield test_client


def register(client: TestClient, *users: str) -> None:
    """Register accounts the way a user of the app does: through its guarded endpoint."""
    query = [("sdkappid", APP), *(("users", user) for user in users)]
    answer = client.post("/accounts", params=query)
    assert answer.status_code == 200 and answer.json() == {"added": list(users)}


def test_dependency_reserves_and_the_handler_sees_the_result(client: TestClient):
    register(client, "o", "a")
    made = client.post(
        "/groups", params={"sdkappid": APP}, json={"group": "g", "type": "Work", "owner": "o"}
    )
    assert made.json() == {"members": 1}
    joined = client.post("/groups/g/members", headers={"X-App-Id": APP}, json={"members": ["a"]})
    assert joined.status_code == 200 and joined.json() == {"added": ["a"]}


def test_a_failing_handler_releases_its_reservation(client: TestClient):
    register(client, "o", "a", "b", "x", "y")
    client.post(
        "/groups", params={"sdkappid": APP}, json={"group": "g", "type": "Work", "owner": "o"}
    )
    failed = client.post(
        "/groups/g/members", params={"sdkappid": APP, "fail": "true"}, json={"members": ["a", "b"]}
    )
    assert failed.status_code == 500
    assert client.get("/usage/a", params={"sdkappid": APP}).json() == {"friends": 0, "groups": 0}
    rejected = client.post("/friends/x", params={"sdkappid": APP}, json={"peers": ["y"]})
    assert rejected.status_code == 409
    assert client.get("/usage/x", params={"sdkappid": APP}).json()["friends"] == 0


def test_a_repeated_query_parameter_reserves_every_value(client: TestClient):
    query = [("sdkappid", APP), ("users", "a"), ("users", "b"), ("users", "c")]
    answer = client.post("/accounts", params=query)
    assert answer.json() == {"added": ["a", "b", "c"]}


def test_refusal_is_403_problem_json_with_its_fields(client: TestClient):
    members = [f"m{i}" for i in range(20)]
    register(client, "o", *members)
    client.post(
        "/groups", params={"sdkappid": APP}, json={"group": "g", "type": "Work", "owner": "o"}
    )
    answer = client.post("/groups/g/members", params={"sdkappid": APP}, json={"members": members})
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["code"] == 10014 and body["limit"] == "group_members"
    assert (body["scope"], body["scope_id"], body["current"], body["maximum"]) == (
        "group",
        "g",
        1,
        20,
    )
    assert body["lift"] == {"kind": "edition", "id": "pro", "value": 200, "price": 999.0}


def test_ids_that_are_not_accounts_are_403_problem_json_naming_them(client: TestClient):
    register(client, "o", "a")
    made = client.post(
        "/groups", params={"sdkappid": APP}, json={"group": "g", "type": "Work", "owner": "o"}
    )
    assert made.json() == {"members": 1}

    def not_registered(answer: Any, *accounts: str) -> None:
        assert answer.status_code == 403
        assert answer.headers["content-type"] == "application/problem+json"
        body = answer.json()
        assert (body["title"], body["status"], body["accounts"]) == (
            "Not registered",
            403,
            list(accounts),
        )
        assert all(repr(account) in body["detail"] for account in accounts)
        assert "code" not in body and "limit" not in body  # not a limit's refusal

    # the reservation is all or nothing: one stranger among the members adds none of them
    joined = client.post(
        "/groups/g/members", params={"sdkappid": APP}, json={"members": ["a", "s1", "s2"]}
    )
    not_registered(joined, "s1", "s2")
    assert client.get("/usage/a", params={"sdkappid": APP}).json()["groups"] == 0
    owned = client.post(
        "/groups", params={"sdkappid": APP}, json={"group": "h", "type": "Work", "owner": "s3"}
    )
    not_registered(owned, "s3")
    assert client.get("/usage/o", params={"sdkappid": APP}).json()["groups"] == 1
    # an unregistered requester, then an unregistered peer: answered before the handler's 409
    not_registered(
        client.post("/friends/s4", params={"sdkappid": APP}, json={"peers": ["a"]}), "s4"
    )
    not_registered(
        client.post("/friends/a", params={"sdkappid": APP}, json={"peers": ["s5"]}), "s5"
    )
    assert client.get("/usage/a", params={"sdkappid": APP}).json()["friends"] == 0
    # registered, the same join goes through
    register(client, "s1", "s2")
    again = client.post(
        "/groups/g/members", params={"sdkappid": APP}, json={"members": ["a", "s1", "s2"]}
    )
    assert again.status_code == 200 and again.json() == {"added": ["a", "s1", "s2"]}


def test_bad_input_is_422_naming_the_field(client: TestClient):
    missing_app = client.get("/usage/a")
    assert missing_app.status_code == 422 and missing_app.json()["field"] == "sdkappid"
    bad_app = client.get("/usage/a", params={"sdkappid": "1{2}"})
    assert bad_app.status_code == 422 and bad_app.json()["field"] == "app"
    long_user = client.get("/usage/" + "x" * 40, params={"sdkappid": APP})
    assert long_user.status_code == 422 and long_user.json()["field"] == "user"
    no_members = client.post("/groups/g/members", params={"sdkappid": APP}, content=b"{oops")
    assert no_members.status_code == 422 and no_members.json()["field"] == "body"
    wrong_type = client.post(
        "/groups", params={"sdkappid": APP}, json={"group": "g", "type": "Club", "owner": "o"}
    )
    assert wrong_type.status_code == 422 and wrong_type.json()["field"] == "type"
    unknown_group = client.post(
        "/groups/none/members", params={"sdkappid": APP}, json={"members": ["a"]}
    )
    assert unknown_group.status_code == 404


def test_store_outage_is_503_problem_json(clock):
    settings = Settings(redis_url="redis://127.0.0.1:1/0")
    limiter = AsyncLimiter.from_settings(settings, clock=clock)
    with TestClient(build_app(limiter)) as client:
        answer = client.get("/usage/a", params={"sdkappid": APP})
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "1"


def test_optional_app_dependency_gives_none():
    app = FastAPI()

    @app.get("/")
    async def root(limits: MaybeHandle) -> dict[str, bool]:
        return {"bound": limits is not None}

    with TestClient(app) as client:
        assert client.get("/").json() == {"bound": False}


def test_lifespan_builds_the_engine_on_app_state():
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with limiter_lifespan(app, Settings(redis_url="memory://lifespan-test")):
            yield

    app = FastAPI(lifespan=lifespan)
    install_exception_handler(app)

    @app.post("/accounts/{user}")
    async def register(user: str, limits: Handle) -> dict[str, list[str]]:
        return {"added": list((await limits.register_users([user])).added)}

    with TestClient(app) as client:
        assert client.post("/accounts/a", params={"sdkappid": APP}).json() == {"added": ["a"]}
        assert client.post("/accounts/a", params={"sdkappid": APP}).json() == {"added": []}


# -- the decorator -------------------------------------------------------------------------------


def test_decorator_on_a_sync_function(backend: Backend, clock):
    limiter = Limiter(SyncStore(backend.sync_client()), clock=clock)
    written: list[str] = []

    @guard(limiter, "register_users", app="sdkappid", users="accounts")
    def import_accounts(sdkappid: str, accounts: list[str], fail: bool = False) -> int:
        if fail:
            raise Failure("write failed")
        written.extend(accounts)
        return len(accounts)

    assert import_accounts(APP, [f"u{i}" for i in range(60)]) == 60
    with pytest.raises(Failure):
        import_accounts(APP, ["x", "y"], fail=True)
    assert limiter.usage(APP).users == 60
    with pytest.raises(Refused) as caught:
        import_accounts(APP, [f"v{i}" for i in range(41)])
    assert caught.value.code == 70398
    assert limiter.usage(APP).users == 60
    assert len(written) == 60


def test_decorator_on_a_coroutine_function(backend: Backend, clock, enroll: Enroll):
    enroll(APP, "o")
    limiter = AsyncLimiter(AsyncStore(backend.async_client()), clock=clock)

    @guard(
        limiter,
        "create_group",
        app="app",
        group="group_id",
        owner="owner",
        type=lambda args: "Public",
    )
    async def create(app: str, group_id: str, owner: str, fail: bool = False) -> str:
        if fail:
            raise Failure("write failed")
        return group_id

    async def scenario() -> None:
        assert await create(APP, "g1", "o") == "g1"
        with pytest.raises(Failure):
            await create(APP, "g2", "o", fail=True)
        assert await limiter.group_usage(APP, "g2") is None
        assert (await limiter.user_usage(APP, "o")).groups == 1
        await limiter.aclose()

    asyncio.run(scenario())


def test_decorator_misuse_fails_at_decoration(backend: Backend, clock):
    limiter = Limiter(SyncStore(backend.sync_client()), clock=clock)
    with pytest.raises(TypeError, match="unknown action"):
        guard(limiter, "teleport", app="a")
    with pytest.raises(TypeError, match="app="):
        guard(limiter, "register_users", users="u")
    with pytest.raises(TypeError, match="no argument"):
        guard(limiter, "register_users", app="app", users="people")(lambda app, users: None)

    async def coroutine(app: str, users: list[str]) -> None:
        return None

    with pytest.raises(TypeError, match="AsyncLimiter"):
        guard(limiter, "register_users", app="app", users="users")(coroutine)
