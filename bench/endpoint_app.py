"""The endpoint ``bench/endpoint.py`` loads: one IM-shaped "join a group" command, in the variant
named by ``BENCH_ENDPOINT_VARIANT``, so the servers differ only in what guards it.

    none     no guard
    bare     a dependency running one EVALSHA (SADD of the member) on a redis.asyncio client:
             the floor of any guard that asks Redis once per request
    handle   the library's lightest wiring: ``Depends(AppLimiter())`` and one ``add_members``
             call in the handler (README, "a handle bound to the request's app")
    reserve  the library's reservation: ``Depends(Reserve("add_members", ...))``, released if
             the handler raises (a yield dependency)
    slowapi  slowapi's ``@limiter.limit`` with a Redis storage and a limit never reached

Every variant uses the Redis at ``LIMITER_REDIS_URL``. With ``BENCH_ENDPOINT_PROFILE`` naming a
folder, the server runs under cProfile and writes ``<folder>/<variant>.prof`` when it stops.
"""

from __future__ import annotations

import cProfile
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel
from slowapi import Limiter as SlowLimiter
from slowapi import _rate_limit_exceeded_handler
from slowapi.errors import RateLimitExceeded

from limiter.fastapi import (
    AppLimiter,
    BoundLimiter,
    Reserve,
    install_exception_handler,
    limiter_lifespan,
)
from limiter.settings import load_settings

VARIANTS = ("none", "bare", "handle", "reserve", "slowapi")
PATH = "/v4/group_open_http_svc/add_group_member"
# The bare variant's set; bench/endpoint.py counts it to prove every request reached Redis.
BARE_SET = "bench:endpoint:bare"
# slowapi: one counter per app, a limit the run never reaches (so it never refuses).
SLOWAPI_LIMIT = "1000000000/day"
# Reserve's sources: the app from ?sdkappid=, the group and the one user from the JSON body.
RESERVE = Reserve("add_members", group="GroupId", users="Member_Account")
Limits = Annotated[BoundLimiter, Depends(AppLimiter())]

Handler = Callable[..., Awaitable[dict[str, Any]]]


class Join(BaseModel):
    """The request body: one user joins one group."""

    GroupId: str
    Member_Account: str


async def add_group_member(body: Join, request: Request) -> dict[str, Any]:
    """The endpoint every variant serves (``request`` is there because slowapi needs it)."""
    member = {"Member_Account": body.Member_Account, "Result": 1}
    return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "MemberList": [member]}


async def add_group_member_handled(body: Join, limits: Limits) -> dict[str, Any]:
    """The endpoint with its decision in the handler (a refusal raises: 403 problem+json)."""
    await limits.add_members(body.GroupId, body.Member_Account, all_or_nothing=True)
    member = {"Member_Account": body.Member_Account, "Result": 1}
    return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "MemberList": [member]}


async def bare_evalsha(body: Join, request: Request) -> None:
    """The floor: one registered script, one round trip, nothing else."""
    await request.app.state.bare_script(keys=[BARE_SET], args=[body.Member_Account])


def create_app() -> FastAPI:
    """The app of the variant ``BENCH_ENDPOINT_VARIANT`` (the uvicorn factory)."""
    variant = os.environ["BENCH_ENDPOINT_VARIANT"]
    if variant not in VARIANTS:
        raise ValueError(f"BENCH_ENDPOINT_VARIANT: {variant!r} is not one of {VARIANTS}")
    url = load_settings().redis_url
    profile = os.environ.get("BENCH_ENDPOINT_PROFILE")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if variant in ("handle", "reserve"):
                await stack.enter_async_context(limiter_lifespan(app))
            if variant == "bare":
                client = aioredis.Redis.from_url(url, decode_responses=True)
                stack.push_async_callback(client.aclose)
                app.state.bare_script = client.register_script(
                    "return redis.call('SADD', KEYS[1], ARGV[1])"
                )
            if profile:
                stack.enter_context(_profiled(os.path.join(profile, f"{variant}.prof")))
            yield

    app = FastAPI(lifespan=lifespan)
    handler: Handler = add_group_member
    dependencies = []
    if variant == "bare":
        dependencies.append(Depends(bare_evalsha))
    elif variant == "handle":
        handler = add_group_member_handled
        install_exception_handler(app)
    elif variant == "reserve":
        dependencies.append(Depends(RESERVE))
        install_exception_handler(app)
    elif variant == "slowapi":
        app.state.limiter = SlowLimiter(
            key_func=lambda request: request.query_params["sdkappid"], storage_uri=url
        )
        # slowapi types its handler for its own exception, Starlette for any: as its docs do.
        app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)  # type: ignore[arg-type]
        handler = app.state.limiter.limit(SLOWAPI_LIMIT)(add_group_member)
    app.post(PATH, dependencies=dependencies)(handler)
    return app


@contextmanager
def _profiled(path: str) -> Iterator[None]:
    """cProfile over the server's whole life (the event loop runs in this thread)."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(path)
