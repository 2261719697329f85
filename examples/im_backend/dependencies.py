"""What the IM commands take besides their body: the request's app (``sdkappid``), the limiter
bound to it, the engine, the database and the guarded services; and the per-app lock."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from examples.im_backend.db import Database
from examples.im_backend.services import Services
from limiter import AsyncLimiter
from limiter.errors import InvalidRequest
from limiter.fastapi import (
    AppLimiter,
    BoundLimiter,
    HistoryStart,
    app_id_from_request,
    get_limiter,
)
from limiter.ids import check_app_id


def request_app(request: Request) -> str | None:
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


def required_app(
    request: Request,
    sdkappid: Annotated[
        str, Query(description="the app (SDKAppID)", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    ],
) -> str:
    """The request's app, as :func:`request_app` reads it for the limiter's dependencies."""
    request_app(request)
    return sdkappid


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


AppId = Annotated[str, Depends(required_app)]
Db = Annotated[Database, Depends(_db)]
Engine = Annotated[AsyncLimiter, Depends(get_limiter)]
Limits = Annotated[BoundLimiter, Depends(AppLimiter(request_app))]
Guarded = Annotated[Services, Depends(_services)]
HistorySince = Annotated[
    datetime | None, Depends(HistoryStart(start="MinTime", app_id=request_app))
]

Handler = Callable[..., Awaitable[dict[str, Any]]]


def one_app_at_a_time(handler: Handler) -> Handler:
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
