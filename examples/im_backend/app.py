"""The example IM backend's app: ``create_app()`` serves the hosted IM's REST commands
(``POST /v4/<service>/<command>``) over its own SQLite data, every addition checked by limiter.

Two integration styles, as a real backend would mix them:

- the FastAPI dependency (:class:`~limiter.fastapi.AppLimiter`) on the batch endpoints, which
  decide per item and write SQLite for what was allowed; a failed write releases exactly what
  the limiter added (:meth:`~limiter.fastapi.BoundLimiter.release_added`);
- the plain decorator (:func:`~limiter.guard`) on the service functions behind
  ``account_import`` and ``create_group`` (:mod:`examples.im_backend.services`).

Removals write SQLite first and the limiter after, so a failure in between leaves the counters
high (refusing early), never low (letting anything over a limit). Every ``/v4`` answer is the
IM's shape with HTTP 200, except a store outage: 503 with the same FAIL body
(:mod:`examples.im_backend.errors`).

``create_app()`` reads ``LIMITER_*`` (the admin API at ``/admin`` needs
``LIMITER_ADMIN_TOKENS``) and ``IM_DB_PATH`` (default ``im.sqlite3``); ``app`` is built from
the environment on first use (``uvicorn examples.im_backend.app:app``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from examples.im_backend.db import Database
from examples.im_backend.dependencies import required_app
from examples.im_backend.errors import install_error_handlers
from examples.im_backend.routers import accounts, friends, groups, messages
from examples.im_backend.services import Services
from limiter import AsyncLimiter, Settings
from limiter.admin import admin_router
from limiter.callbacks import callback_router
from limiter.fastapi import limiter_lifespan
from limiter.metrics import metrics_router
from limiter.settings import load_settings

log = logging.getLogger("examples.im_backend")
DEFAULT_DB_PATH = "im.sqlite3"


def create_app(
    settings: Settings | None = None,
    *,
    limiter: AsyncLimiter | None = None,
    db_path: str | Path | None = None,
) -> FastAPI:
    """The example app. ``limiter`` replaces the engine built from ``settings`` (a test's engine
    with its own clock; the caller closes it); ``db_path`` replaces ``IM_DB_PATH``."""
    config = limiter.settings if limiter is not None else load_settings(settings)
    path = db_path or os.environ.get("IM_DB_PATH") or DEFAULT_DB_PATH

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as resources:
            if limiter is None:
                engine = await resources.enter_async_context(limiter_lifespan(app, config))
            else:
                engine = app.state.limiter = limiter
            db = Database(path)
            resources.callback(db.close)  # before the engine: last in, first out
            app.state.db = db
            app.state.services = Services.build(engine, db)
            if config.redis_url.startswith("memory://"):
                log.warning(
                    "LIMITER_REDIS_URL is %s: counters live in this process only (in-process "
                    "store); point it at Redis to share them between workers",
                    config.redis_url,
                )
            yield

    app = FastAPI(
        redirect_slashes=False,  # /v4/.../ is an unknown command, not a redirect
        title="limiter example IM backend",
        description="The hosted IM's REST commands over SQLite, guarded by limiter.",
        lifespan=lifespan,
    )
    app.add_middleware(_JsonBodies)
    for service in (accounts, friends, groups, messages):
        app.include_router(service.router, prefix="/v4", dependencies=[Depends(required_app)])
    app.include_router(admin_router(config), prefix="/admin")
    app.include_router(callback_router(config), prefix="/callback")
    app.include_router(metrics_router())
    install_error_handlers(app)
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


def __getattr__(name: str) -> FastAPI:
    """``app``, built from the environment on first use (``uvicorn ...app:app``)."""
    if name == "app":
        built = create_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)
