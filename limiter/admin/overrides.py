"""Admin routes for custom limits: app-wide, of one user, of one group's members."""

from fastapi import APIRouter, Response

from limiter.admin.auth import Actor
from limiter.admin.errors import DELETING, AdminRoute, deleted
from limiter.admin.requests import Engine, OverrideChange, UserLimit
from limiter.catalog import LimitName
from limiter.schemas import OverrideView

router = APIRouter(route_class=AdminRoute)


@router.put(
    "/apps/{app_id}/overrides/{limit}",
    summary="Set an app-wide custom limit",
    response_model=OverrideView,
)
async def set_app_override(
    app_id: str, limit: LimitName, body: OverrideChange, engine: Engine, actor: Actor
) -> OverrideView:
    override = await engine.set_override(app_id, limit, body.value, body.expires_at, actor=actor)
    return OverrideView.of("app", app_id, limit, override, engine.now())


@router.delete(
    "/apps/{app_id}/overrides/{limit}", summary="Remove an app-wide custom limit", **DELETING
)
async def clear_app_override(
    app_id: str, limit: LimitName, engine: Engine, actor: Actor
) -> Response:
    found = await engine.clear_override(app_id, limit, actor=actor)
    return deleted(found, f"app {app_id!r} has no {limit} override")


@router.put(
    "/apps/{app_id}/users/{user_id}/overrides/{limit}",
    summary="Set a user's custom limit",
    response_model=OverrideView,
)
async def set_user_override(
    app_id: str, user_id: str, limit: UserLimit, body: OverrideChange, engine: Engine, actor: Actor
) -> OverrideView:
    override = await engine.set_override(
        app_id, limit, body.value, body.expires_at, user=user_id, actor=actor
    )
    return OverrideView.of("user", user_id, limit, override, engine.now())


@router.delete(
    "/apps/{app_id}/users/{user_id}/overrides/{limit}",
    summary="Remove a user's custom limit",
    **DELETING,
)
async def clear_user_override(
    app_id: str, user_id: str, limit: UserLimit, engine: Engine, actor: Actor
) -> Response:
    found = await engine.clear_override(app_id, limit, user=user_id, actor=actor)
    return deleted(found, f"user {user_id!r} has no {limit} override")


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
    return OverrideView.of("group", group_id, "group_members", override, engine.now())


@router.delete(
    "/apps/{app_id}/groups/{group_id}/overrides/group_members",
    summary="Remove a group's member limit",
    **DELETING,
)
async def clear_group_override(
    app_id: str, group_id: str, engine: Engine, actor: Actor
) -> Response:
    found = await engine.clear_override(app_id, "group_members", group=group_id, actor=actor)
    return deleted(found, f"group {group_id!r} has no group_members override")
