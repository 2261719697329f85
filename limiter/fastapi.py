"""FastAPI integration: the engine on ``app.state``, request-bound handles, reservations as
dependencies, and one exception handler answering ``application/problem+json``.

Only calls the engine; never touches Redis itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from limiter.engine import AsyncLimiter
from limiter.engine import BoundLimiter as BoundLimiter  # the handle AppLimiter gives
from limiter.errors import (
    ConfigurationError,
    GroupExists,
    GroupNotFound,
    InvalidRequest,
    LimiterError,
    NotRegistered,
    PlanConflict,
    Refused,
    StoreUnavailable,
)
from limiter.ids import check_app_id
from limiter.jsontext import parse_json
from limiter.metering import LoginRecorded
from limiter.reservations import ACTION_PARAMETERS, Reservation
from limiter.schemas import RefusalView
from limiter.settings import Settings

AppResolver = Callable[[Request], str | None]
RequestSource = str | Callable[[Request], Any]
PROBLEM_JSON = "application/problem+json"
_LIST_PARAMETERS = frozenset({"users", "peers", "members"})


def app_id_from_request(request: Request) -> str | None:
    """The default app resolver: the ``sdkappid`` query parameter, then an ``X-App-Id`` header.

    Either given more than once is refused: a proxy reading the first value and the app the
    last would each act for a different app.
    """
    for source, values in (
        ("sdkappid", request.query_params.getlist("sdkappid")),
        ("X-App-Id", request.headers.getlist("x-app-id")),
    ):
        if len(values) > 1:
            raise InvalidRequest(source, "given more than once: name one app")
        if values and values[0]:
            return values[0]
    return None


@asynccontextmanager
async def limiter_lifespan(
    app: FastAPI, settings: Settings | None = None, *, engine: AsyncLimiter | None = None
) -> AsyncIterator[AsyncLimiter]:
    """Keep an engine on ``app.state.limiter`` for the app's lifetime and close it at the end:
    ``engine`` if given (a test's, or one built elsewhere), else one built from ``settings``."""
    limiter = AsyncLimiter.from_settings(settings) if engine is None else engine
    app.state.limiter = limiter
    try:
        yield limiter
    finally:
        await limiter.aclose()


def lifespan(
    settings: Settings | None = None, *, engine: AsyncLimiter | None = None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The lifespan of an app that needs nothing else at start-up:
    ``FastAPI(lifespan=lifespan())`` runs :func:`limiter_lifespan` with these arguments."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        async with limiter_lifespan(app, settings, engine=engine):
            yield

    return run


def get_limiter(request: Request) -> AsyncLimiter:
    """The engine kept on ``app.state.limiter`` (see :func:`limiter_lifespan`)."""
    limiter = getattr(request.app.state, "limiter", None)
    if not isinstance(limiter, AsyncLimiter):
        raise ConfigurationError("app.state.limiter is not an AsyncLimiter: set it in the lifespan")
    return limiter


def _app_id(request: Request, resolver: AppResolver) -> str:
    app = resolver(request)
    if not app:
        raise InvalidRequest("sdkappid", "the request names no app (sdkappid or X-App-Id)")
    return check_app_id(app)


class AppLimiter:
    """Dependency: a :class:`BoundLimiter` for the request's app.

    ``auto_error=False`` gives None instead of a 422 when the request names no app.
    """

    def __init__(self, app_id: AppResolver = app_id_from_request, *, auto_error: bool = True):
        self.app_id = app_id
        self.auto_error = auto_error

    async def __call__(self, request: Request) -> BoundLimiter | None:
        try:
            app = _app_id(request, self.app_id)
        except InvalidRequest:
            if self.auto_error:
                raise
            return None
        return BoundLimiter(get_limiter(request), app)


class Reserve:
    """Dependency: reserve an action before the handler runs; release it if the handler raises.

    Each parameter of the action (``ACTION_PARAMETERS``) comes from a source: a name looked up
    in the path parameters, then the query string, then the JSON body's top-level fields; or
    a callable given the request. ``Reserve("add_members", group="group_id", users="members")``.
    """

    def __init__(
        self, action: str, *, app_id: AppResolver = app_id_from_request, **sources: RequestSource
    ) -> None:
        if action not in ACTION_PARAMETERS:
            known = ", ".join(ACTION_PARAMETERS)
            raise TypeError(f"Reserve: unknown action {action!r}; known: {known}")
        unknown = set(sources) - set(ACTION_PARAMETERS[action])
        if unknown:
            raise TypeError(f"Reserve: {action} takes no {', '.join(sorted(unknown))}")
        self.action = action
        self.app_id = app_id
        self.sources: Mapping[str, RequestSource] = sources

    async def __call__(self, request: Request) -> AsyncIterator[Reservation]:
        app = _app_id(request, self.app_id)
        limiter = get_limiter(request)
        values = await _resolve(request, self.sources)
        reservation = await limiter.reserve(app, self.action, values)
        try:
            yield reservation
        except BaseException:
            await limiter.release(reservation)
            raise


class RecordLogin:
    """Dependency: count the request's user as active today (DAU) before the handler runs.

    ``user`` is a source as in :class:`Reserve`: ``RecordLogin(user="UserID")``.
    """

    def __init__(self, user: RequestSource, *, app_id: AppResolver = app_id_from_request) -> None:
        self.user = user
        self.app_id = app_id

    async def __call__(self, request: Request) -> LoginRecorded:
        app = _app_id(request, self.app_id)
        values = await _resolve(request, {"user": self.user})
        if "user" not in values:
            raise InvalidRequest(_source_name(self.user, "user"), "the request names no user")
        return await get_limiter(request).record_login(app, values["user"])


class HistoryStart:
    """Dependency: a history query's start, kept inside the app's retention (``history_days``).

    ``start`` is a source as in :class:`Reserve` holding Unix seconds or an ISO 8601 instant.
    A start before the cutoff is moved up to it, or with ``refuse=True`` answered 422
    (:class:`OutsideRetention`). No start given: the cutoff (None when history is unlimited).
    """

    def __init__(
        self,
        start: RequestSource,
        *,
        refuse: bool = False,
        app_id: AppResolver = app_id_from_request,
    ) -> None:
        self.start = start
        self.refuse = refuse
        self.app_id = app_id

    async def __call__(self, request: Request) -> datetime | None:
        app = _app_id(request, self.app_id)
        limiter = get_limiter(request)
        field = _source_name(self.start, "start")
        values = await _resolve(request, {"start": self.start})
        if values.get("start") is None:
            return await limiter.history_cutoff(app)
        start = _given_instant(values["start"], field)
        return await limiter.clamp_history(app, start, refuse=self.refuse, field=field)


def _source_name(source: RequestSource, default: str) -> str:
    return source if isinstance(source, str) else default


def _given_instant(value: Any, field: str) -> datetime:
    """Unix seconds (a number or digits) or an ISO 8601 instant with its offset."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str) and value.isdigit():
            return datetime.fromtimestamp(int(value), UTC)
        if isinstance(value, str):
            instant = datetime.fromisoformat(value)
            if instant.tzinfo is not None:
                return instant
    except (ValueError, OverflowError, OSError):
        pass
    raise InvalidRequest(field, f"must be Unix seconds or an ISO 8601 instant, not {value!r}")


async def _resolve(request: Request, sources: Mapping[str, RequestSource]) -> dict[str, Any]:
    """Each source's value: a callable's answer, else the name looked up in the path
    parameters, the query string (a list parameter may repeat), then the JSON body."""
    values: dict[str, Any] = {}
    body: Any = None
    for name, source in sources.items():
        if callable(source):
            values[name] = source(request)
        elif source in request.path_params:
            values[name] = request.path_params[source]
        elif source in request.query_params:
            many = name in _LIST_PARAMETERS
            query = request.query_params
            values[name] = query.getlist(source) if many else query[source]
        else:
            if body is None:
                body = await _json_body(request)
            if source in body:
                values[name] = body[source]
    return values


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    body = parse_json(raw, "body")
    if not isinstance(body, dict):
        raise InvalidRequest("body", "must be a JSON object")
    return body


def problem_response(
    status: int,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **fields: Any,
) -> JSONResponse:
    """An ``application/problem+json`` answer (RFC 9457) with extra ``fields``; a 503 says
    ``Retry-After``."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **fields}
    if status == 503:
        headers = {"Retry-After": "1", **(headers or {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def limiter_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    """Answer a :class:`LimiterError` as ``application/problem+json``: a refusal 403 with its
    fields, ids that are not registered accounts 403 naming them, an outage 503, bad input 422
    naming the field, a missing group 404, a conflict 409."""
    if isinstance(exc, Refused):
        also = [RefusalView.body(other) for other in exc.also]
        body = RefusalView.body(exc.refusal)
        return problem_response(403, "Limit reached", str(exc), **body, also=also)
    if isinstance(exc, StoreUnavailable):
        return problem_response(
            503, "Limit store unavailable", "the limit store did not answer; retry"
        )
    if isinstance(exc, InvalidRequest):
        return problem_response(422, "Invalid request", str(exc), field=exc.field)
    if isinstance(exc, NotRegistered):
        accounts = list(exc.accounts)
        return problem_response(403, "Not registered", str(exc), accounts=accounts)
    if isinstance(exc, GroupNotFound):
        return problem_response(404, "Group not found", str(exc), code=exc.code)
    if isinstance(exc, GroupExists):
        return problem_response(409, "Group exists", str(exc), code=exc.code)
    if isinstance(exc, PlanConflict):
        return problem_response(409, "Plan conflict", str(exc))
    if isinstance(exc, ConfigurationError):
        return problem_response(500, "Limiter misconfigured", str(exc))
    return problem_response(400, "Limiter error", str(exc))


def install_exception_handler(app: FastAPI) -> None:
    """Route every :class:`LimiterError` to :func:`limiter_exception_handler`."""
    app.add_exception_handler(LimiterError, limiter_exception_handler)
