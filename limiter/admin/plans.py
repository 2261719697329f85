"""Admin routes for an app's edition: set it, renew it."""

from fastapi import APIRouter

from limiter.admin.apps import app_view
from limiter.admin.auth import Actor
from limiter.admin.errors import AdminRoute, documented
from limiter.admin.requests import EditionChange, Engine, Renewal
from limiter.schemas import AppView

router = APIRouter(route_class=AdminRoute)


@router.put("/apps/{app_id}/edition", summary="Set the edition", response_model=AppView)
async def set_edition(app_id: str, body: EditionChange, engine: Engine, actor: Actor) -> AppView:
    plan = await engine.set_edition(
        app_id, body.edition, body.purchased_on, body.months, actor=actor
    )
    return await app_view(engine, app_id, plan)


@router.post(
    "/apps/{app_id}/edition/renew",
    summary="Renew the paid edition",
    response_model=AppView,
    responses={409: documented("The app is on a free edition")},
)
async def renew(app_id: str, body: Renewal, engine: Engine, actor: Actor) -> AppView:
    plan = await engine.renew(app_id, body.months, actor=actor)
    return await app_view(engine, app_id, plan)
