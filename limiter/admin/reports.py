"""Admin routes for what an app holds above its limits now, and its plan changes."""

from typing import Annotated

from fastapi import APIRouter, Query

from limiter.admin.errors import AdminRoute
from limiter.admin.requests import AuditQuery, Engine
from limiter.schemas import AuditLog, OverLimitReport

router = APIRouter(route_class=AdminRoute)


@router.get(
    "/apps/{app_id}/over-limit",
    summary="Everything above its limit now",
    response_model=OverLimitReport,
)
async def over_limit(app_id: str, engine: Engine) -> OverLimitReport:
    return OverLimitReport.of(await engine.over_limit(app_id))


@router.get(
    "/apps/{app_id}/audit",
    summary="The latest plan changes, newest first",
    response_model=AuditLog,
)
async def audit(app_id: str, engine: Engine, query: Annotated[AuditQuery, Query()]) -> AuditLog:
    return AuditLog.of(await engine.audit(app_id, query.limit))
