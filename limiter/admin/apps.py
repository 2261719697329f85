"""Admin routes for an app's plan, effective limits and usage, and for the store's health."""

from collections.abc import Mapping
from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from limiter.admin.errors import AdminRoute
from limiter.admin.requests import Engine
from limiter.engine import AsyncLimiter
from limiter.errors import StoreUnavailable
from limiter.plan import PlanState
from limiter.results import DataStatus
from limiter.schemas import AppView, HealthView

router = APIRouter(route_class=AdminRoute)


async def app_view(engine: AsyncLimiter, app: str, plan: PlanState) -> AppView:
    """The app on ``plan``: its limits now and its usage."""
    usage = await engine.usage(app)
    now = engine.now()
    return AppView.of(app, plan, engine.limits_of(plan, now), usage, now, engine.today())


def _health(
    store: Literal["reachable", "unavailable"],
    status: DataStatus,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    view = HealthView.of(store, status)
    return JSONResponse(view.model_dump(mode="json"), status_code, headers)


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
    return await app_view(engine, app_id, await engine.plan(app_id))
