"""Admin routes for an app's expansions: add one, remove one."""

from fastapi import APIRouter, Response

from limiter.admin.auth import Actor
from limiter.admin.errors import DELETING, AdminRoute, deleted, documented
from limiter.admin.requests import Engine, ExpansionPurchase
from limiter.schemas import ExpansionView

router = APIRouter(route_class=AdminRoute)


@router.post(
    "/apps/{app_id}/expansions",
    summary="Add an expansion",
    status_code=201,
    response_model=ExpansionView,
    responses={409: documented("The app's edition cannot have this expansion")},
)
async def add_expansion(
    app_id: str, body: ExpansionPurchase, engine: Engine, actor: Actor
) -> ExpansionView:
    grant = await engine.add_expansion(
        app_id, body.kind, body.purchased_on, body.months, body.days, actor=actor
    )
    return ExpansionView.of(grant, engine.today())


@router.delete(
    "/apps/{app_id}/expansions/{expansion_id}", summary="Remove an expansion", **DELETING
)
async def remove_expansion(
    app_id: str, expansion_id: str, engine: Engine, actor: Actor
) -> Response:
    found = await engine.remove_expansion(app_id, expansion_id, actor=actor)
    return deleted(found, f"app {app_id!r} has no expansion {expansion_id!r}")
