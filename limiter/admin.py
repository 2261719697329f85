"""The admin HTTP API: a FastAPI router over the engine's plan changes, reports, reconcile,
billing and health, for operators holding a named bearer token (the name is the audit log's
actor).

Mount it under any prefix: ``app.include_router(admin_router(), prefix="/admin")``. It only
calls the engine on ``app.state.limiter``; it never touches Redis itself.
"""

import hmac
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterator, Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from limiter.catalog import LimitName
from limiter.core import MAX_MONTHS
from limiter.engine import AsyncLimiter
from limiter.errors import (
    ConfigurationError,
    InvalidRequest,
    LimiterError,
    Scope,
    StoreUnavailable,
)
from limiter.fastapi import (
    PROBLEM_JSON,
    get_limiter,
    limiter_exception_handler,
    problem_response,
)
from limiter.jsontext import parse_json
from limiter.limits import APP_LIMITS, Status, resolve
from limiter.marker import DataStatus
from limiter.metering import Month
from limiter.periods import local_date
from limiter.plan import ExpansionGrant, Override, PlanState
from limiter.rebuild import Record, SourceDocument, parse_document, parse_line, report_as_dict
from limiter.settings import MIN_ADMIN_TOKEN_LENGTH, Settings, load_settings

NDJSON = "application/x-ndjson"
# Longest NDJSON line a reconcile takes (a 6,000-member group is about 200 KB).
MAX_LINE_BYTES = 4 * 1024 * 1024
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Engine = Annotated[AsyncLimiter, Depends(get_limiter)]
UserLimit = Literal["friends", "groups_per_user"]


# pydantic alone also takes a Unix time for an instant, and a datetime at midnight for a date.
def _iso_date(value: object) -> object:
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("must be a date as YYYY-MM-DD")


def _iso_instant(value: object) -> object:
    if isinstance(value, str):
        return value
    raise ValueError("must be an ISO 8601 instant with its offset")


Day = Annotated[date, BeforeValidator(_iso_date)]
Instant = Annotated[AwareDatetime, BeforeValidator(_iso_instant)]
Months = Annotated[StrictInt, Field(ge=1, le=MAX_MONTHS)]


# -- requests: bodies and query strings; an unknown field is refused --------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EditionChange(_Strict):
    """Put the app on an edition; a paid one from `purchased_on` for `months` periods."""

    edition: str = Field(examples=["pro"])
    purchased_on: Day | None = None
    months: Months = 1


class Renewal(_Strict):
    """Extend the paid edition by `months` periods."""

    months: Months = 1


class ExpansionPurchase(_Strict):
    """An expansion bought on `purchased_on` for `months` periods; `days` only for
    `history_extension` (8..360)."""

    kind: str = Field(examples=["group_members_2000"])
    purchased_on: Day
    months: Months = 1
    days: StrictInt | None = None


class OverrideChange(_Strict):
    """A custom limit: `value` null is unlimited; `expires_at` null never expires."""

    value: Annotated[StrictInt, Field(ge=0)] | None
    expires_at: Instant | None = None


class AuditQuery(_Strict):
    """The audit log's query: how many entries, newest first."""

    limit: int = Field(default=50, ge=1, le=1000, description="how many entries, newest first")


class MonthQuery(_Strict):
    """A month as YYYY-MM; the current month in the billing timezone when omitted."""

    month: str | None = Field(
        default=None, description="YYYY-MM; default: this month in the billing timezone"
    )


# -- answers ----------------------------------------------------------------------------------


class Problem(BaseModel):
    """An error answer (application/problem+json); on a 422, `field` names the bad input."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None


class PeriodView(BaseModel):
    """The contiguous paid span containing today (or the last one, once lapsed)."""

    starts_on: date
    ends_on: date


class ExpansionView(BaseModel):
    """An expansion; `active`: today (billing timezone) is within its paid span."""

    id: str
    kind: str
    starts_on: date
    ends_on: date
    active: bool
    days: int | None


class OverrideView(BaseModel):
    """A custom limit; `id` is the app, user or group it applies to."""

    scope: Scope
    id: str
    limit: str
    value: int | None
    expires_at: datetime | None
    active: bool


class LimitsView(BaseModel):
    """The effective limits now; null is unlimited; `group_members` by group type."""

    users: int | None
    friends: int | None
    groups_per_user: int | None
    group_members: dict[str, int | None]
    av_chatrooms: int | None
    history_days: int | None


class UsageView(BaseModel):
    """The app's counts now: accounts, live groups (all types), AV chat rooms."""

    users: int
    groups: int
    av_chatrooms: int


class AppView(BaseModel):
    """An app's plan, effective limits (null = unlimited) and usage."""

    app_id: str
    edition: str
    status: Status
    period: PeriodView | None
    expansions: list[ExpansionView]
    overrides: list[OverrideView]
    limits: LimitsView
    usage: UsageView


class OverLimitItem(BaseModel):
    """One account count, user or group above its effective limit."""

    scope: Scope
    id: str
    limit: str
    current: int
    maximum: int


class OverLimitReport(BaseModel):
    """Everything above its limit now (lower limits never evict)."""

    items: list[OverLimitItem]


class AuditItem(BaseModel):
    """One plan change: the plan field's value before and after (null when absent)."""

    at: datetime
    actor: str
    action: str
    field: str
    before: Any
    after: Any


class AuditLog(BaseModel):
    """Plan changes, newest first."""

    items: list[AuditItem]


class DriftView(BaseModel):
    """One kind of thing before and after a reconcile, added and removed."""

    before: int
    after: int
    added: int
    removed: int


class CountChangeView(BaseModel):
    """A user's or group's count that a reconcile changed."""

    scope: Literal["user", "group"]
    id: str
    count: str
    before: int
    after: int


class ReconcileView(BaseModel):
    """What a reconcile changed; `changes` lists the first per-entity count changes."""

    app_id: str
    accounts: DriftView
    friendships: DriftView
    groups: DriftView
    memberships: DriftView
    av_chatrooms: DriftView
    groups_retyped: int
    changes: list[CountChangeView]
    changes_total: int
    truncated: bool


class DayUsers(BaseModel):
    """Distinct users seen on one billing day."""

    day: date
    users: int


class PeakDau(BaseModel):
    """The month's highest daily active users, and the day."""

    users: int
    day: date | None


class PeakGroups(BaseModel):
    """The month's most live groups at once, and the day it was reached."""

    groups: int
    day: date | None


class DayBandwidth(BaseModel):
    """One day's peak AV bandwidth."""

    day: date
    mbps: float


class MonthlyUsageView(BaseModel):
    """What a month's bill measures, as recorded so far."""

    app_id: str
    month: str
    dau: list[DayUsers]
    peak_dau: PeakDau
    peak_groups: PeakGroups
    bandwidth: list[DayBandwidth]


class BillItemView(BaseModel):
    """One line of a bill."""

    item: str
    quantity: int | float
    unit_price: float
    amount: float
    detail: str


class BillView(BaseModel):
    """A month's bill in CNY: prepaid items of the month and its metered usage."""

    app_id: str
    month: str
    currency: str
    items: list[BillItemView]
    total: float


class DataStatusView(BaseModel):
    """What the engine knows of its Redis data set: the marker it saw (written on the data
    set's first contact), and the flushes or replacements it detected since it started."""

    marker: str | None
    since: datetime | None
    checked_at: datetime | None
    resets: int
    last_reset_at: datetime | None


class HealthView(BaseModel):
    """Whether the store answered a check of its data set's marker just now, and that
    data set's status; `resets` above 0: reconcile every app, set plans again."""

    store: Literal["reachable", "unavailable"]
    data: DataStatusView


# -- errors and authentication ----------------------------------------------------------------


def _documented(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}}


_PROBLEM_SCHEMA = Problem.model_json_schema()
_COMMON_ERRORS: dict[str, Any] = {
    "401": _documented("No admin token, or a wrong one"),
    # Merged into FastAPI's own 422 (the body's validation errors, application/json).
    "422": {"content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}},
    "503": _documented("The limit store did not answer; retry"),
}
# FastAPI's own answer to a body it cannot decode.
_UNREADABLE_BODY = {
    "description": "The body is not JSON text",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"detail": {"type": "string"}},
                "required": ["detail"],
            }
        }
    },
}


class _Unauthorized(Exception):
    pass


class AdminRoute(APIRoute):
    """A route that answers :class:`LimiterError` (and a failed authentication) itself, as
    ``application/problem+json``, so the host app need not install limiter's exception
    handler; it also documents those answers."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        errors = dict(_COMMON_ERRORS)
        if self.body_field is not None:
            errors["400"] = _UNREADABLE_BODY
        self.openapi_extra = {"responses": errors, **(self.openapi_extra or {})}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except _Unauthorized:
                detail = "give a valid admin token: Authorization: Bearer <token>"
                return problem_response(401, "Unauthorized", detail, {"WWW-Authenticate": "Bearer"})
            except LimiterError as exc:
                return await limiter_exception_handler(request, exc)
            except RequestValidationError as exc:
                return _invalid_request(exc)

        return answer


def _invalid_request(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 (``detail``: loc, msg, type per problem) without echoing the input, which
    FastAPI's own handler fails to encode when it is bytes that are not UTF-8 (a 500)."""
    detail = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


_bearer = HTTPBearer(auto_error=False, scheme_name="AdminToken")


class AdminToken:
    """Dependency: the name of the admin token the request carries; a 401 without one."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        if not tokens:
            raise ConfigurationError("admin API: no admin token configured (LIMITER_ADMIN_TOKENS)")
        for name, token in tokens.items():
            if not name or len(token) < MIN_ADMIN_TOKEN_LENGTH:
                raise ConfigurationError(
                    f"admin API: token {name!r}: names must be non-empty, tokens at least "
                    f"{MIN_ADMIN_TOKEN_LENGTH} characters"
                )
        self._tokens = [(name, token.encode()) for name, token in tokens.items()]

    async def __call__(self, request: Request, _: Annotated[object, Depends(_bearer)]) -> str:
        # The header is read here, not from ``_bearer`` (kept for the OpenAPI scheme): that one
        # takes the first of two Authorization headers and strips the token's whitespace.
        values = request.headers.getlist("authorization")
        scheme, _, presented = values[0].partition(" ") if len(values) == 1 else ("", "", "")
        if scheme.lower() != "bearer" or not presented:
            raise _Unauthorized
        given = presented.encode("latin-1")  # the header's own bytes (Starlette decodes latin-1)
        actor = None
        for name, token in self._tokens:
            # Compare with every token whatever matched already: the time taken names none.
            if hmac.compare_digest(given, token) and actor is None:
                actor = name
        if actor is None:
            raise _Unauthorized
        return actor


# -- views ------------------------------------------------------------------------------------


async def _app_view(engine: AsyncLimiter, app: str, plan: PlanState) -> AppView:
    usage = await engine.usage(app)
    now = engine.core.clock.now()
    limits = resolve(engine.catalog, plan, now, engine.core.tz)
    today = local_date(now, engine.core.tz)
    overrides = [
        _override_view("app", app, limit, o, now) for limit, o in plan.app_overrides.items()
    ]
    overrides += [
        _override_view("user", user, limit, o, now)
        for (user, limit), o in sorted(plan.user_overrides.items())
    ]
    overrides += [
        _override_view("group", group, "group_members", o, now)
        for group, o in sorted(plan.group_overrides.items())
    ]
    span = limits.period
    period = None if span is None else PeriodView(starts_on=span.starts_on, ends_on=span.ends_on)
    return AppView(
        app_id=app,
        edition=plan.edition,
        status=limits.status,
        period=period,
        expansions=[_expansion_view(grant, today) for grant in plan.expansions],
        overrides=overrides,
        limits=LimitsView(
            **{name: limits.app[name].value for name in APP_LIMITS},
            group_members={kind: limit.value for kind, limit in limits.group_members.items()},
        ),
        usage=UsageView(users=usage.users, groups=usage.groups, av_chatrooms=usage.av_chatrooms),
    )


def _health(
    store: Literal["reachable", "unavailable"],
    status: DataStatus,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    data = DataStatusView.model_validate(status, from_attributes=True)
    view = HealthView(store=store, data=data)
    return JSONResponse(view.model_dump(mode="json"), status_code, headers)


def _expansion_view(grant: ExpansionGrant, today: date) -> ExpansionView:
    return ExpansionView(
        id=grant.id,
        kind=grant.kind,
        starts_on=grant.starts_on,
        ends_on=grant.ends_on,
        active=grant.active_on(today),
        days=grant.days,
    )


def _override_view(
    scope: Scope, subject: str, limit: str, override: Override, now: datetime
) -> OverrideView:
    return OverrideView(
        scope=scope,
        id=subject,
        limit=limit,
        value=override.value,
        expires_at=override.expires_at,
        active=override.active(now),
    )


def _deleted(found: bool, missing: str) -> Response:
    return Response(status_code=204) if found else problem_response(404, "Not found", missing)


def _month(engine: AsyncLimiter, month: str | None) -> Month:
    if month is None:
        return Month.of(engine.core.clock.now(), engine.core.tz)
    return Month.parse(month)


# -- reconcile bodies -------------------------------------------------------------------------


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` written in place: a ``#/$defs`` reference
    would not resolve inside an OpenAPI document."""
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    result: dict[str, Any] = inline(schema)
    return result


_RECONCILE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline_refs(SourceDocument.model_json_schema())},
            NDJSON: {
                "schema": {
                    "type": "string",
                    "description": 'one JSON object a line: {"account": id}, {"friendship": '
                    '{"user", "friend", "both_ways"}} or {"group": {"id", "type", "owner", '
                    '"members"}}; a big group may come in several lines',
                }
            },
        },
    }
}


async def _lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The lines of a byte stream as each one completes (the last may lack its newline); a
    line longer than :data:`MAX_LINE_BYTES` is refused rather than held in memory."""
    rest = b""
    async for chunk in chunks:
        *complete, rest = (rest + chunk).split(b"\n")
        for line in complete:
            yield line
        if len(rest) > MAX_LINE_BYTES:
            raise InvalidRequest(
                "body",
                f"a line is longer than {MAX_LINE_BYTES} bytes: split a big group over lines",
            )
    if rest:
        yield rest


async def _streamed_records(chunks: AsyncIterable[bytes]) -> AsyncIterator[Record]:
    """The records of an NDJSON stream as its lines arrive."""
    number = 0
    async for line in _lines(chunks):
        number += 1
        record = parse_line(line, number)
        if record is not None:
            yield record


# -- the router -------------------------------------------------------------------------------


def admin_router(
    settings: Settings | None = None, *, tokens: Mapping[str, str] | None = None
) -> APIRouter:
    """The admin API's routes. ``tokens`` (name -> token) default to ``settings.admin_tokens``
    (``LIMITER_ADMIN_TOKENS`` when ``settings`` is None); without any it raises
    :class:`ConfigurationError`. A request's token name is the audit log's actor."""
    if tokens is None:
        configured = load_settings(settings).admin_tokens
        tokens = {name: token.get_secret_value() for name, token in configured.items()}
    authenticate = AdminToken(tokens)
    Actor = Annotated[str, Depends(authenticate)]
    router = APIRouter(route_class=AdminRoute, tags=["admin"], dependencies=[Depends(authenticate)])
    not_found: dict[int | str, dict[str, Any]] = {404: _documented("No such expansion or override")}
    # What every DELETE shares: 204 when it removed something, 404 problem+json when not.
    deleting: dict[str, Any] = {
        "status_code": 204,
        "response_class": Response,
        "responses": not_found,
    }

    @router.get(
        "/health",
        summary="Store reachability and the data set's status",
        response_model=HealthView,
        responses={503: {"model": HealthView, "description": "The store did not answer"}},
    )
    async def health(engine: Engine) -> Response:
        try:
            status = await engine.check_data()
        except StoreUnavailable:
            return _health("unavailable", engine.data_status(), 503, {"Retry-After": "1"})
        return _health("reachable", status)

    @router.get("/apps/{app_id}", summary="An app's plan, limits and usage", response_model=AppView)
    async def get_app(app_id: str, engine: Engine) -> AppView:
        return await _app_view(engine, app_id, await engine.plan(app_id))

    @router.put("/apps/{app_id}/edition", summary="Set the edition", response_model=AppView)
    async def set_edition(
        app_id: str, body: EditionChange, engine: Engine, actor: Actor
    ) -> AppView:
        plan = await engine.set_edition(
            app_id, body.edition, body.purchased_on, body.months, actor=actor
        )
        return await _app_view(engine, app_id, plan)

    @router.post(
        "/apps/{app_id}/edition/renew",
        summary="Renew the paid edition",
        response_model=AppView,
        responses={409: _documented("The app is on a free edition")},
    )
    async def renew(app_id: str, body: Renewal, engine: Engine, actor: Actor) -> AppView:
        plan = await engine.renew(app_id, body.months, actor=actor)
        return await _app_view(engine, app_id, plan)

    @router.post(
        "/apps/{app_id}/expansions",
        summary="Add an expansion",
        status_code=201,
        response_model=ExpansionView,
        responses={409: _documented("The app's edition cannot have this expansion")},
    )
    async def add_expansion(
        app_id: str, body: ExpansionPurchase, engine: Engine, actor: Actor
    ) -> ExpansionView:
        grant = await engine.add_expansion(
            app_id, body.kind, body.purchased_on, body.months, body.days, actor=actor
        )
        return _expansion_view(grant, local_date(engine.core.clock.now(), engine.core.tz))

    @router.delete(
        "/apps/{app_id}/expansions/{expansion_id}",
        summary="Remove an expansion",
        **deleting,
    )
    async def remove_expansion(
        app_id: str, expansion_id: str, engine: Engine, actor: Actor
    ) -> Response:
        found = await engine.remove_expansion(app_id, expansion_id, actor=actor)
        return _deleted(found, f"app {app_id!r} has no expansion {expansion_id!r}")

    @router.put(
        "/apps/{app_id}/overrides/{limit}",
        summary="Set an app-wide custom limit",
        response_model=OverrideView,
    )
    async def set_app_override(
        app_id: str, limit: LimitName, body: OverrideChange, engine: Engine, actor: Actor
    ) -> OverrideView:
        override = await engine.set_override(
            app_id, limit, body.value, body.expires_at, actor=actor
        )
        return _override_view("app", app_id, limit, override, engine.core.clock.now())

    @router.delete(
        "/apps/{app_id}/overrides/{limit}",
        summary="Remove an app-wide custom limit",
        **deleting,
    )
    async def clear_app_override(
        app_id: str, limit: LimitName, engine: Engine, actor: Actor
    ) -> Response:
        found = await engine.clear_override(app_id, limit, actor=actor)
        return _deleted(found, f"app {app_id!r} has no {limit} override")

    @router.put(
        "/apps/{app_id}/users/{user_id}/overrides/{limit}",
        summary="Set a user's custom limit",
        response_model=OverrideView,
    )
    async def set_user_override(
        app_id: str,
        user_id: str,
        limit: UserLimit,
        body: OverrideChange,
        engine: Engine,
        actor: Actor,
    ) -> OverrideView:
        override = await engine.set_override(
            app_id, limit, body.value, body.expires_at, user=user_id, actor=actor
        )
        return _override_view("user", user_id, limit, override, engine.core.clock.now())

    @router.delete(
        "/apps/{app_id}/users/{user_id}/overrides/{limit}",
        summary="Remove a user's custom limit",
        **deleting,
    )
    async def clear_user_override(
        app_id: str, user_id: str, limit: UserLimit, engine: Engine, actor: Actor
    ) -> Response:
        found = await engine.clear_override(app_id, limit, user=user_id, actor=actor)
        return _deleted(found, f"user {user_id!r} has no {limit} override")

    @router.put(
        "/apps/{app_id}/groups/{group_id}/overrides/group_members",
        summary="Set a group's member limit",
        response_model=OverrideView,
    )
    async def set_group_override(
        app_id: str, group_id: str, body: OverrideChange, engine: Engine, actor: Actor
    ) -> OverrideView:
        override = await engine.set_override(
            app_id, "group_members", body.value, body.expires_at, group=group_id, actor=actor
        )
        now = engine.core.clock.now()
        return _override_view("group", group_id, "group_members", override, now)

    @router.delete(
        "/apps/{app_id}/groups/{group_id}/overrides/group_members",
        summary="Remove a group's member limit",
        **deleting,
    )
    async def clear_group_override(
        app_id: str, group_id: str, engine: Engine, actor: Actor
    ) -> Response:
        found = await engine.clear_override(app_id, "group_members", group=group_id, actor=actor)
        return _deleted(found, f"group {group_id!r} has no group_members override")

    @router.get(
        "/apps/{app_id}/over-limit",
        summary="Everything above its limit now",
        response_model=OverLimitReport,
    )
    async def over_limit(app_id: str, engine: Engine) -> OverLimitReport:
        found = await engine.over_limit(app_id)
        return OverLimitReport(
            items=[
                OverLimitItem(
                    scope=item.scope,
                    id=item.id,
                    limit=item.limit,
                    current=item.current,
                    maximum=item.maximum,
                )
                for item in found
            ]
        )

    @router.get(
        "/apps/{app_id}/audit",
        summary="The latest plan changes, newest first",
        response_model=AuditLog,
    )
    async def audit(app_id: str, engine: Engine, query: Annotated[AuditQuery, Query()]) -> AuditLog:
        entries = await engine.audit(app_id, query.limit)
        return AuditLog(
            items=[
                AuditItem(
                    at=entry.at,
                    actor=entry.actor,
                    action=entry.action,
                    field=entry.field,
                    before=entry.before,
                    after=entry.after,
                )
                for entry in entries
            ]
        )

    @router.post(
        "/apps/{app_id}/reconcile",
        summary="Rebuild the counters from the IM's own data",
        response_model=ReconcileView,
        responses={415: _documented("The body is neither application/json nor NDJSON")},
        openapi_extra=_RECONCILE_BODY,
    )
    async def reconcile(
        app_id: str, request: Request, engine: Engine, actor: Actor
    ) -> ReconcileView | Response:
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        records: Iterator[Record] | AsyncIterator[Record]
        if media_type == "application/json":
            records = parse_document(parse_json(await request.body(), "body"))
        elif media_type == NDJSON:
            records = _streamed_records(request.stream())
        else:
            detail = f"send application/json or {NDJSON}, not {media_type or 'no content type'}"
            return problem_response(415, "Unsupported media type", detail)
        report = await engine.reconcile(app_id, records, actor=actor)
        return ReconcileView.model_validate(report_as_dict(report))

    @router.get(
        "/apps/{app_id}/usage",
        summary="A month's metered usage",
        response_model=MonthlyUsageView,
    )
    async def monthly_usage(
        app_id: str, engine: Engine, query: Annotated[MonthQuery, Query()]
    ) -> MonthlyUsageView:
        usage = await engine.monthly_usage(app_id, _month(engine, query.month))
        return MonthlyUsageView.model_validate(usage.as_dict())

    @router.get("/apps/{app_id}/bill", summary="A month's bill", response_model=BillView)
    async def bill(app_id: str, engine: Engine, query: Annotated[MonthQuery, Query()]) -> BillView:
        found = await engine.bill(app_id, _month(engine, query.month))
        return BillView.model_validate(found.as_dict())

    return router
