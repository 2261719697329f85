"""Admin routes for a month's metered usage and its bill."""

from typing import Annotated

from fastapi import APIRouter, Query

from limiter.admin.errors import AdminRoute
from limiter.admin.requests import Engine, MonthQuery
from limiter.engine import AsyncLimiter
from limiter.metering import Month
from limiter.schemas import BillView, MonthlyUsageView

router = APIRouter(route_class=AdminRoute)


def _month(engine: AsyncLimiter, month: str | None) -> Month:
    if month is None:
        return engine.month()
    return Month.parse(month)


@router.get(
    "/apps/{app_id}/usage",
    summary="A month's metered usage",
    response_model=MonthlyUsageView,
)
async def monthly_usage(
    app_id: str, engine: Engine, query: Annotated[MonthQuery, Query()]
) -> MonthlyUsageView:
    usage = await engine.monthly_usage(app_id, _month(engine, query.month))
    return MonthlyUsageView.of(usage)


@router.get("/apps/{app_id}/bill", summary="A month's bill", response_model=BillView)
async def bill(app_id: str, engine: Engine, query: Annotated[MonthQuery, Query()]) -> BillView:
    return BillView.of(await engine.bill(app_id, _month(engine, query.month)))
