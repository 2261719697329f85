"""The example IM backend: the hosted IM's REST commands (``POST /v4/<service>/<command>``)
over its own SQLite data, every addition checked by limiter first.

Two integration styles, as a real backend would mix them:

- the FastAPI dependency (:class:`~limiter.fastapi.AppLimiter`) on the batch endpoints, which
  decide per item and write SQLite for what was allowed; a failed write releases exactly what
  the limiter added (:meth:`~limiter.AsyncLimiter.release`);
- the plain decorator (:func:`~limiter.guard`) on the service functions behind
  ``account_import`` and ``create_group`` (:mod:`examples.im_backend.services`).

Removals write SQLite first and the limiter after, so a failure in between leaves the counters
high (refusing early), never low (letting anything over a limit). Every ``/v4`` answer is the
IM's shape with HTTP 200, except a store outage: 503 with the same FAIL body.

``create_app()`` reads ``LIMITER_*`` (the admin API at ``/admin`` needs
``LIMITER_ADMIN_TOKENS``) and ``IM_DB_PATH`` (default ``im.sqlite3``); ``app`` is built from
the environment on first use (``uvicorn examples.im_backend.app:app``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import secrets
import sqlite3
import string
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from examples.im_backend import shapes
from examples.im_backend.db import Database
from examples.im_backend.services import Services
from limiter import AsyncLimiter, Outcome, Reservation, Settings
from limiter.admin import admin_router
from limiter.callbacks import callback_router
from limiter.errors import (
    GroupExists,
    GroupNotFound,
    InvalidRequest,
    LimiterError,
    Refused,
    StoreUnavailable,
)
from limiter.fastapi import (
    AppLimiter,
    BoundLimiter,
    HistoryStart,
    app_id_from_request,
    limiter_exception_handler,
)
from limiter.keys import check_app_id
from limiter.metrics import metrics_router
from limiter.results import FriendItem, Item
from limiter.settings import load_settings

log = logging.getLogger("examples.im_backend")
DEFAULT_DB_PATH = "im.sqlite3"
_GROUP_ID_LETTERS = string.ascii_uppercase + string.digits
_DIGITS = re.compile(r"[0-9]{1,18}")


def create_app(
    settings: Settings | None = None,
    *,
    limiter: AsyncLimiter | None = None,
    db_path: str | Path | None = None,
) -> FastAPI:
    """The example app. ``limiter`` replaces the engine built from ``settings`` (a test's engine
    with its own clock); ``db_path`` replaces ``IM_DB_PATH``."""
    config = limiter.settings if limiter is not None else load_settings(settings)
    path = db_path or os.environ.get("IM_DB_PATH") or DEFAULT_DB_PATH

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = limiter if limiter is not None else AsyncLimiter.from_settings(config)
        db = Database(path)
        app.state.limiter = engine
        app.state.db = db
        app.state.services = Services.build(engine, db)
        if config.redis_url.startswith("memory://"):
            log.warning(
                "LIMITER_REDIS_URL is %s: counters live in this process only (in-process "
                "store); point it at Redis to share them between workers",
                config.redis_url,
            )
        try:
            yield
        finally:
            db.close()
            if limiter is None:
                await engine.aclose()

    app = FastAPI(
        redirect_slashes=False,  # /v4/.../ is an unknown command, not a redirect
        title="limiter example IM backend",
        description="The hosted IM's REST commands over SQLite, guarded by limiter.",
        lifespan=lifespan,
    )
    app.add_middleware(_JsonBodies)
    app.include_router(_im_router())
    app.include_router(admin_router(config), prefix="/admin")
    app.include_router(callback_router(config), prefix="/callback")
    app.include_router(metrics_router())
    app.add_exception_handler(LimiterError, _limiter_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(sqlite3.Error, _database_error)
    app.add_exception_handler(HTTPException, _http_error)
    return app


class _JsonBodies:
    """The hosted service reads every ``/v4`` body as JSON whatever its Content-Type (``curl
    -d`` sends a form type); so does the example."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v4/"):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


# -- answers for errors ----------------------------------------------------------------------------


def _service(request: Request) -> str | None:
    """The ``<service>`` of a ``/v4/<service>/<command>`` request ("" for another ``/v4``
    path), else None."""
    parts = request.url.path.split("/")
    if len(parts) < 2 or parts[1] != "v4":
        return None
    return parts[2] if len(parts) > 3 else ""


def _im(body: dict[str, Any], status_code: int = 200) -> JSONResponse:
    """An IM answer; a 503 says when to retry."""
    headers = {"Retry-After": "1"} if status_code == 503 else None
    return JSONResponse(body, status_code=status_code, headers=headers)


async def _limiter_error(request: Request, exc: Exception) -> Response:
    service = _service(request)
    if service is None:
        return await limiter_exception_handler(request, exc)
    if isinstance(exc, Refused | GroupNotFound | GroupExists):
        return _im(shapes.fail(exc.code, str(exc)))
    if isinstance(exc, InvalidRequest):
        return _im(shapes.fail(shapes.INVALID.get(service, 90001), str(exc)))
    if isinstance(exc, StoreUnavailable):
        info = "the limit store is unavailable; retry (nothing was added; a removal completes)"
        return _im(shapes.fail(shapes.INTERNAL.get(service, 90994), info), 503)
    log.error("%s: %s", request.url.path, exc)
    return _im(shapes.fail(shapes.INTERNAL.get(service, 90994), str(exc)))


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"] if part != "body") or "body"
    if error["type"] == "json_invalid":
        return f"body: not valid JSON ({error.get('ctx', {}).get('error', error['msg'])})"
    return f"{where}: {str(error['msg']).removeprefix('Value error, ')}"


async def _validation_error(request: Request, exc: Exception) -> Response:
    service = _service(request)
    if service is None or not isinstance(exc, RequestValidationError):
        return await request_validation_exception_handler(request, exc)  # type: ignore[arg-type]
    problems = dict.fromkeys(_describe(error) for error in exc.errors())
    info = "; ".join(list(problems)[:3])
    return _im(shapes.fail(shapes.INVALID.get(service, 90001), info))


async def _database_error(request: Request, exc: Exception) -> Response:
    log.error("%s: the database failed: %s", request.url.path, exc)
    service = _service(request) or ""
    info = "the backend's database failed; nothing was changed; retry"
    return _im(shapes.fail(shapes.INTERNAL.get(service, 90994), info), 503)


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's own refusals (a body it cannot parse: nested too deeply, a number with more
    digits than Python converts, or not UTF-8; an unknown command; a method other than POST)
    in the IM's shape on ``/v4``."""
    service = _service(request)
    if service is None or not isinstance(exc, HTTPException):
        return await http_exception_handler(request, exc)  # type: ignore[arg-type]
    code = shapes.INVALID.get(service, 90001)
    if exc.status_code == 400:
        info = (
            "body: could not be read as JSON (nested too deeply, a number too long, or not UTF-8)"
        )
        return _im(shapes.fail(code, info))
    if exc.status_code == 404:
        return _im(shapes.fail(code, f"unknown command {request.url.path}"))
    # Not an IM request at all (a GET): HTTP says so, the body is still the IM's shape.
    info = f"{request.url.path}: {exc.detail}"
    return JSONResponse(shapes.fail(code, info), exc.status_code, headers=exc.headers)


# -- dependencies ----------------------------------------------------------------------------------


def _sdkappid(
    request: Request,
    sdkappid: Annotated[
        str, Query(description="the app (SDKAppID)", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    ],
) -> str:
    """The request's app, as :func:`_request_app` reads it for the limiter's dependencies."""
    _request_app(request)
    return sdkappid


def _request_app(request: Request) -> str | None:
    """The limiter's app resolver (:func:`~limiter.fastapi.app_id_from_request`: named twice it
    is refused, as a proxy reading the first value and this backend the last would disagree),
    naming ``sdkappid``, the IM's parameter, when the value is not an app id."""
    app = app_id_from_request(request)
    if app is not None:
        try:
            check_app_id(app)
        except InvalidRequest as exc:
            raise InvalidRequest("sdkappid", exc.message) from None
    return app


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


AppId = Annotated[str, Depends(_sdkappid)]
Db = Annotated[Database, Depends(_db)]


Handler = Callable[..., Awaitable[dict[str, Any]]]


def _one_app_at_a_time(handler: Handler) -> Handler:
    """Run a command holding its app's lock, from its first check to its last write, so a
    concurrent command of the same app (a removal racing an addition) cannot slip in between
    the limiter's decision and SQLite. The lock is released before the answer is sent (a
    client slow to read it holds nobody up). The command takes ``app`` and ``db``."""

    @functools.wraps(handler)
    async def serialized(**arguments: Any) -> dict[str, Any]:
        db: Database = arguments["db"]
        async with db.serialized(arguments["app"]):
            return await handler(**arguments)

    return serialized


Limits = Annotated[BoundLimiter, Depends(AppLimiter(_request_app))]
Guarded = Annotated[Services, Depends(_services)]
HistorySince = Annotated[
    datetime | None, Depends(HistoryStart(start="MinTime", app_id=_request_app))
]


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _checked_users(limits: BoundLimiter, users: Iterable[str], field: str) -> list[str]:
    """Ids as the limiter will take them (its id lengths and batch maximum), checked before
    a removal writes SQLite, so a request it refuses changes nothing."""
    return list(limits.limiter.core.check_users(list(users), field))


async def _write_or_release(
    limits: BoundLimiter, reservation: Reservation, write: Callable[[], None]
) -> None:
    """Write SQLite for what the limiter added; if that fails, release it and re-raise."""
    try:
        write()
    except BaseException:
        try:
            await limits.limiter.release(reservation)
        except LimiterError as exc:
            log.error("not released, counts stay high until a reconcile: %s", exc)
        raise


def _missing(db: Database, app: str, users: Iterable[str]) -> list[str]:
    wanted = _unique(users)
    found = db.existing_accounts(app, wanted)
    return [user for user in wanted if user not in found]


def _unknown_accounts(
    db: Database, app: str, users: Iterable[str], service: str
) -> dict[str, Any] | None:
    """A FAIL answer naming the accounts that were never imported, or None if all were."""
    missing = _missing(db, app, users)
    if not missing:
        return None
    info = f"not imported: {', '.join(repr(user) for user in missing)}"
    return shapes.fail(shapes.INVALID[service], info)


# -- the commands ----------------------------------------------------------------------------------


def _im_router() -> APIRouter:
    router = APIRouter(prefix="/v4", dependencies=[Depends(_sdkappid)])

    @router.post(
        "/im_open_login_svc/account_import",
        response_model=shapes.Answer,
        summary="Import one account (decorator style: guard on the service function)",
    )
    @_one_app_at_a_time
    async def account_import(
        body: shapes.AccountImport, app: AppId, services: Guarded, db: Db
    ) -> dict[str, Any]:
        await services.import_account(app, body.UserID)
        return shapes.ok()

    @router.post(
        "/im_open_login_svc/multiaccount_import",
        response_model=shapes.MultiAccountImportAnswer,
        summary="Import up to 100 accounts; those past the account cap fail (70398)",
    )
    @_one_app_at_a_time
    async def multiaccount_import(
        body: shapes.MultiAccountImport, app: AppId, limits: Limits, db: Db
    ) -> dict[str, Any]:
        accounts = _unique(body.Accounts)
        result = await limits.register_users(accounts)
        kept = [item.id for item in result.items if item.outcome is not Outcome.REFUSED]
        reservation = Reservation("register_users", app, result)
        await _write_or_release(limits, reservation, lambda: db.add_accounts(app, kept))
        reasons = [
            {
                "UserID": item.id,
                "ErrorCode": item.refusal.code,
                "ErrorInfo": item.refusal.describe(),
            }
            for item in result.refused
            if item.refusal is not None
        ]
        return shapes.ok(FailAccounts=[reason["UserID"] for reason in reasons], FailReasons=reasons)

    @router.post(
        "/im_open_login_svc/account_delete",
        response_model=shapes.AccountDeleteAnswer,
        summary="Delete accounts with their friendships and memberships",
    )
    @_one_app_at_a_time
    async def account_delete(
        body: shapes.AccountDelete, app: AppId, limits: Limits, db: Db
    ) -> dict[str, Any]:
        users = _checked_users(limits, (item.UserID for item in body.DeleteItem), "DeleteItem")
        existing = db.existing_accounts(app, users)
        db.delete_accounts(app, users)
        deleted = await limits.delete_users(users)
        # A retry after an outage finds the account gone from SQLite, still in the limiter.
        existing |= {user.id for user in deleted.users if user.registered}
        items = [
            {"UserID": user, "ResultCode": 0, "ResultInfo": ""}
            if user in existing
            else {
                "UserID": user,
                "ResultCode": shapes.ACCOUNT_MISSING,
                "ResultInfo": "the account does not exist",
            }
            for user in users
        ]
        return shapes.ok(ResultItem=items)

    @router.post(
        "/sns/friend_add",
        response_model=shapes.FriendAnswer,
        summary="Add friends; per peer 0, 30010 (your list is full), 30014 (theirs is)",
    )
    @_one_app_at_a_time
    async def friend_add(
        body: shapes.FriendAdd, app: AppId, limits: Limits, db: Db
    ) -> dict[str, Any]:
        user = body.From_Account
        unknown = _unknown_accounts(db, app, [user], "sns")
        if unknown:
            return unknown
        peers = _unique(item.To_Account for item in body.AddFriendItem)
        invalid = {peer: "cannot add yourself" for peer in peers if peer == user}
        invalid |= {peer: "the account was not imported" for peer in _missing(db, app, peers)}
        valid = [peer for peer in peers if peer not in invalid]
        both_ways = body.AddType == "Add_Type_Both"
        outcomes: dict[str, tuple[int, str]] = {
            peer: (shapes.INVALID["sns"], info) for peer, info in invalid.items()
        }
        if valid:
            result = await limits.add_friends(user, valid, both_ways)
            entries = []
            for item in result.items:
                if item.outcome is Outcome.REFUSED:
                    continue
                if isinstance(item, FriendItem) and item.outcome is Outcome.ADDED:
                    mine, theirs = item.requester_side, item.peer_side
                else:
                    # Already there, or degraded (store down, policy open): what was asked
                    # for. The limiter has it (or could not say), so SQLite must too; this
                    # repairs a removal that reached SQLite only.
                    mine, theirs = True, both_ways
                if mine:
                    entries.append((user, item.id))
                if theirs:
                    entries.append((item.id, user))
            reservation = Reservation("add_friends", app, result, requester=user)
            await _write_or_release(
                limits, reservation, lambda: db.add_friend_entries(app, entries)
            )
            outcomes |= {item.id: _friend_outcome(item) for item in result.items}
        return _friend_answer(peers, outcomes)

    @router.post(
        "/sns/friend_delete",
        response_model=shapes.FriendAnswer,
        summary="Delete friends, both ways (default) or from the requester's list only",
    )
    @_one_app_at_a_time
    async def friend_delete(
        body: shapes.FriendDelete, limits: Limits, app: AppId, db: Db
    ) -> dict[str, Any]:
        user = body.From_Account
        peers = _checked_users(limits, body.To_Account, "To_Account")
        both_ways = body.DeleteType == "Delete_Type_Both"
        entries = [(user, peer) for peer in peers]
        if both_ways:
            entries += [(peer, user) for peer in peers]
        db.delete_friend_entries(app, entries)
        result = await limits.remove_friends(user, peers, both_ways)
        not_friends = (shapes.INVALID["sns"], "not a friend: nothing changed")
        outcomes = {
            item.id: (0, "") if item.outcome is Outcome.REMOVED or result.degraded else not_friends
            for item in result.items
        }
        return _friend_answer(peers, outcomes)

    @router.post(
        "/group_open_http_svc/create_group",
        response_model=shapes.CreateGroupAnswer,
        response_model_exclude_none=True,
        summary="Create a group (decorator style); 10037, 10038, 10036 or 60020 refuse it",
    )
    @_one_app_at_a_time
    async def create_group(
        body: shapes.CreateGroup, request: Request, app: AppId, services: Guarded, db: Db
    ) -> dict[str, Any]:
        limiter: AsyncLimiter = request.app.state.limiter
        try:
            group_type = limiter.catalog.group_type(body.Type)
        except InvalidRequest as exc:
            raise InvalidRequest("Type", exc.message) from None
        group = body.GroupId or _new_group_id(group_type)
        members = _unique(member.Member_Account for member in body.MemberList)
        unknown = _unknown_accounts(db, app, [body.Owner_Account, *members], "group_open_http_svc")
        if unknown:
            return unknown
        if db.group(app, group) is not None:
            raise GroupExists(app, group)
        await services.create_group(app, group, group_type, body.Owner_Account, body.Name, members)
        return shapes.ok(GroupId=group)

    @router.post(
        "/group_open_http_svc/add_group_member",
        response_model=shapes.AddGroupMemberAnswer,
        response_model_exclude_none=True,
        summary="Add up to 300 members; 10014 when the group cannot take them all",
    )
    @_one_app_at_a_time
    async def add_group_member(
        body: shapes.AddGroupMember, app: AppId, limits: Limits, db: Db
    ) -> dict[str, Any]:
        group = body.GroupId
        if db.group(app, group) is None:
            raise GroupNotFound(app, group)
        members = _unique(member.Member_Account for member in body.MemberList)
        missing = set(_missing(db, app, members))
        valid = [user for user in members if user not in missing]
        answers: dict[str, dict[str, Any]] = {
            user: {"Member_Account": user, "Result": 0} for user in missing
        }
        if valid:
            result = await limits.add_members(group, valid)
            reservation = Reservation("add_members", app, result)
            kept = [item.id for item in result.items if item.outcome is not Outcome.REFUSED]
            await _write_or_release(limits, reservation, lambda: db.add_members(app, group, kept))
            answers |= {item.id: _member_answer(item) for item in result.items}
        return shapes.ok(MemberList=[answers[user] for user in members])

    @router.post(
        "/group_open_http_svc/delete_group_member",
        response_model=shapes.Answer,
        summary="Remove members (not the owner); safe to retry",
    )
    @_one_app_at_a_time
    async def delete_group_member(
        body: shapes.DeleteGroupMember, app: AppId, limits: Limits, db: Db
    ) -> dict[str, Any]:
        group = db.group(app, body.GroupId)
        users = _checked_users(limits, body.MemberToDel_Account, "MemberToDel_Account")
        if group is not None and group.owner in users:
            info = f"MemberToDel_Account: {group.owner!r} owns the group and cannot be removed"
            return shapes.fail(shapes.INVALID["group_open_http_svc"], info)
        db.delete_members(app, body.GroupId, users)
        try:
            removed = await limits.remove_members(body.GroupId, users)
        except GroupNotFound:
            if group is None:  # in neither: unknown (in SQLite only: drift, reconcile)
                raise
        else:
            if group is None and removed.degraded:  # nothing to go by but SQLite
                raise GroupNotFound(app, body.GroupId)
        return shapes.ok()

    @router.post(
        "/group_open_http_svc/destroy_group",
        response_model=shapes.Answer,
        summary="Destroy a group; its members' group counts go down; safe to retry",
    )
    @_one_app_at_a_time
    async def destroy_group(
        body: shapes.DestroyGroup, app: AppId, limits: Limits, db: Db
    ) -> dict[str, Any]:
        # A retry after an outage finds the group gone from SQLite but still in the limiter.
        group = db.group(app, body.GroupId)
        db.destroy_group(app, body.GroupId)
        destroyed = await limits.destroy_group(body.GroupId)
        if group is None and not destroyed.existed:
            raise GroupNotFound(app, body.GroupId)
        return shapes.ok()

    @router.post(
        "/group_open_http_svc/get_group_info",
        response_model=shapes.GetGroupInfoAnswer,
        summary="Groups with MemberNum and MaxMemberNum (the effective member limit)",
    )
    async def get_group_info(
        body: shapes.GetGroupInfo, app: AppId, limits: Limits, db: Db
    ) -> dict[str, Any]:
        effective = await limits.limits()
        infos = []
        for group_id in _unique(body.GroupIdList):
            group = db.group(app, group_id)
            if group is None:
                infos.append(
                    {
                        "GroupId": group_id,
                        "ErrorCode": GroupNotFound.code,
                        "ErrorInfo": "the group does not exist",
                    }
                )
                continue
            infos.append(
                {
                    "GroupId": group.id,
                    "ErrorCode": 0,
                    "Type": group.type,
                    "Name": group.name,
                    "Owner_Account": group.owner,
                    "MemberNum": group.members,
                    "MaxMemberNum": effective.for_group(group.id, group.type).value,
                }
            )
        return shapes.ok(GroupInfo=infos)

    @router.post(
        "/openim/sendmsg",
        response_model=shapes.SendMsgAnswer,
        response_model_exclude_none=True,
        summary="Store a one-to-one message",
    )
    async def sendmsg(body: shapes.SendMsg, request: Request, app: AppId, db: Db) -> dict[str, Any]:
        unknown = _unknown_accounts(db, app, [body.From_Account, body.To_Account], "openim")
        if unknown:
            return unknown
        limiter: AsyncLimiter = request.app.state.limiter
        sent_at = int(limiter.now().timestamp())
        cutoff = await limiter.history_cutoff(app)
        if cutoff is not None:  # the hosted service deletes what it no longer keeps
            db.purge_messages(app, int(cutoff.timestamp()))
        content = json.dumps([element.model_dump() for element in body.MsgBody])
        seq = db.add_message(
            app, body.From_Account, body.To_Account, body.MsgRandom, sent_at, content
        )
        return shapes.ok(MsgTime=sent_at, MsgKey=_message_key(seq, body.MsgRandom, sent_at))

    @router.post(
        "/openim/admin_getroammsg",
        response_model=shapes.GetRoamMsgAnswer,
        summary="Messages between two users, newest first, only inside the app's history_days",
    )
    async def admin_getroammsg(
        body: shapes.GetRoamMsg, app: AppId, since: HistorySince, db: Db
    ) -> dict[str, Any]:
        start = body.MinTime if since is None else max(body.MinTime, int(since.timestamp()))
        after = _message_position(body.LastMsgKey) if body.LastMsgKey else None
        found = db.messages(
            app,
            body.Operator_Account,
            body.Peer_Account,
            start,
            body.MaxTime,
            after,
            body.MaxCnt + 1,
        )
        page = found[: body.MaxCnt]
        messages = [
            {
                "From_Account": message.from_account,
                "To_Account": message.to_account,
                "MsgSeq": message.seq,
                "MsgRandom": message.random,
                "MsgTimeStamp": message.sent_at,
                "MsgKey": _message_key(message.seq, message.random, message.sent_at),
                "MsgBody": json.loads(message.body),
            }
            for message in page
        ]
        last = messages[-1] if messages else None
        return shapes.ok(
            Complete=int(len(found) <= body.MaxCnt),
            MsgCnt=len(messages),
            LastMsgTime=last["MsgTimeStamp"] if last else None,
            LastMsgKey=last["MsgKey"] if last else None,
            MsgList=messages,
        )

    return router


def _friend_answer(peers: Iterable[str], outcomes: dict[str, tuple[int, str]]) -> dict[str, Any]:
    """A friend command's answer: per peer its (code, message), and the peers that failed."""
    items = [
        {"To_Account": peer, "ResultCode": outcomes[peer][0], "ResultInfo": outcomes[peer][1]}
        for peer in peers
    ]
    failed = [item["To_Account"] for item in items if item["ResultCode"] != 0]
    return shapes.ok(ResultItem=items, Fail_Account=failed)


def _friend_outcome(item: Item) -> tuple[int, str]:
    if item.outcome is Outcome.ADDED:
        return 0, ""
    if item.outcome is Outcome.ALREADY or item.refusal is None:
        return shapes.INVALID["sns"], "already a friend: nothing changed"
    return item.refusal.code, item.refusal.describe()


def _member_answer(item: Item) -> dict[str, Any]:
    if item.outcome is Outcome.ADDED:
        return {"Member_Account": item.id, "Result": 1}
    if item.outcome is Outcome.ALREADY or item.refusal is None:
        return {"Member_Account": item.id, "Result": 2}
    return {"Member_Account": item.id, "Result": 0, "ErrorCode": item.refusal.code}


def _new_group_id(group_type: str) -> str:
    """A fresh id in the hosted service's style: ``@TGS#`` (``@TGS#a`` for AV chat rooms)."""
    tail = "".join(secrets.choice(_GROUP_ID_LETTERS) for _ in range(10))
    return ("@TGS#a" if group_type == "AVChatRoom" else "@TGS#") + tail


def _message_key(seq: int, random: int, sent_at: int) -> str:
    return f"{seq}_{random}_{sent_at}"


def _message_position(key: str) -> tuple[int, int]:
    """(sent_at, seq) of a ``MsgKey`` this backend gave out (``seq_random_time``)."""
    parts = key.split("_")
    numbers = [int(part) for part in parts if _DIGITS.fullmatch(part)]
    if len(parts) != 3 or len(numbers) != 3 or numbers[0] == 0:
        raise InvalidRequest("LastMsgKey", f"not a key this backend gave out: {key!r}")
    seq, _, sent_at = numbers
    return sent_at, seq


def __getattr__(name: str) -> FastAPI:
    """``app``, built from the environment on first use (``uvicorn ...app:app``)."""
    if name == "app":
        built = create_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)
