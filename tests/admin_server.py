"""The admin API as a real server for ``tests/test_admin_processes.py``: uvicorn runs
:func:`factory` in its own process, on the test Redis (``LIMITER_TEST_REDIS_URL``)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from limiter import Settings
from limiter.admin import admin_router
from limiter.fastapi import lifespan

TOKEN = "process-token-0123456789"


def factory() -> FastAPI:
    settings = Settings(
        redis_url=os.environ["LIMITER_TEST_REDIS_URL"],
        cache_seconds=1,
        admin_tokens={"ops": TOKEN},
    )

    app = FastAPI(lifespan=lifespan(settings))
    app.include_router(admin_router(settings), prefix="/admin")
    return app
