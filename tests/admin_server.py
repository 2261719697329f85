"""The admin API as a real server for ``tests/test_admin_processes.py``: uvicorn runs
:func:`factory` in its own process, on the test Redis (``LIMITER_TEST_REDIS_URL``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from limiter import Settings
from limiter.admin import admin_router
from limiter.fastapi import limiter_lifespan

TOKEN = "process-token-0123456789"


def factory() -> FastAPI:
    settings = Settings(
        redis_url=os.environ["LIMITER_TEST_REDIS_URL"],
        cache_seconds=1,
        admin_tokens={"ops": TOKEN},
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with limiter_lifespan(app, settings):
            yield

    app = FastAPI(lifespan=lifespan)
    app.include_router(admin_router(settings), prefix="/admin")
    return app
