"""``group_open_http_svc``: creating groups (through the guarded service), adding and removing
members, destroying groups, and their info with the effective member limit."""

from __future__ import annotations

import secrets
import string
from typing import Any

from fastapi import APIRouter

from examples.im_backend import shapes
from examples.im_backend.dependencies import (
    AppId,
    Db,
    Engine,
    Guarded,
    Limits,
    one_app_at_a_time,
)
from examples.im_backend.routers.common import (
    checked_users,
    missing,
    unique,
    unknown_accounts,
    write_or_release,
)
from limiter import GroupExists, GroupNotFound, InvalidRequest, Item, Outcome

router = APIRouter(prefix="/group_open_http_svc")
_GROUP_ID_LETTERS = string.ascii_uppercase + string.digits


@router.post(
    "/create_group",
    response_model=shapes.CreateGroupAnswer,
    response_model_exclude_none=True,
    summary="Create a group (decorator style); 10037, 10038, 10036 or 60020 refuse it",
)
@one_app_at_a_time
async def create_group(
    body: shapes.CreateGroup, limiter: Engine, app: AppId, services: Guarded, db: Db
) -> dict[str, Any]:
    try:
        group_type = limiter.catalog.group_type(body.Type)
    except InvalidRequest as exc:
        raise InvalidRequest("Type", exc.message) from None
    group = body.GroupId or _new_group_id(group_type)
    members = unique(member.Member_Account for member in body.MemberList)
    unknown = unknown_accounts(db, app, [body.Owner_Account, *members], "group_open_http_svc")
    if unknown:
        return unknown
    if db.group(app, group) is not None:
        raise GroupExists(app, group)
    await services.create_group(app, group, group_type, body.Owner_Account, body.Name, members)
    return shapes.ok(GroupId=group)


@router.post(
    "/add_group_member",
    response_model=shapes.AddGroupMemberAnswer,
    response_model_exclude_none=True,
    summary="Add up to 300 members; 10014 when the group cannot take them all",
)
@one_app_at_a_time
async def add_group_member(
    body: shapes.AddGroupMember, app: AppId, limits: Limits, db: Db
) -> dict[str, Any]:
    group = body.GroupId
    if db.group(app, group) is None:
        raise GroupNotFound(app, group)
    members = unique(member.Member_Account for member in body.MemberList)
    absent = set(missing(db, app, members))
    valid = [user for user in members if user not in absent]
    answers: dict[str, dict[str, Any]] = {
        user: {"Member_Account": user, "Result": 0} for user in absent
    }
    if valid:
        result = await limits.add_members(group, valid)
        kept = [item.id for item in result.items if item.outcome is not Outcome.REFUSED]
        await write_or_release(limits, result, lambda: db.add_members(app, group, kept))
        answers |= {item.id: _member_answer(item) for item in result.items}
    return shapes.ok(MemberList=[answers[user] for user in members])


@router.post(
    "/delete_group_member",
    response_model=shapes.Answer,
    summary="Remove members (not the owner); safe to retry",
)
@one_app_at_a_time
async def delete_group_member(
    body: shapes.DeleteGroupMember, app: AppId, limits: Limits, db: Db
) -> dict[str, Any]:
    group = db.group(app, body.GroupId)
    users = checked_users(limits, body.MemberToDel_Account, "MemberToDel_Account")
    if group is not None and group.owner in users:
        info = f"MemberToDel_Account: {group.owner!r} owns the group and cannot be removed"
        return shapes.fail(shapes.INVALID["group_open_http_svc"], info)
    db.delete_members(app, body.GroupId, users)
    try:
        removed = await limits.remove_members(body.GroupId, users)
    except GroupNotFound:
        if group is None:  # in neither: unknown (in SQLite only: drift, reconcile)
            raise
    else:
        if group is None and removed.degraded:  # nothing to go by but SQLite
            raise GroupNotFound(app, body.GroupId)
    return shapes.ok()


@router.post(
    "/destroy_group",
    response_model=shapes.Answer,
    summary="Destroy a group; its members' group counts go down; safe to retry",
)
@one_app_at_a_time
async def destroy_group(
    body: shapes.DestroyGroup, app: AppId, limits: Limits, db: Db
) -> dict[str, Any]:
    # A retry after an outage finds the group gone from SQLite but still in the limiter.
    group = db.group(app, body.GroupId)
    db.destroy_group(app, body.GroupId)
    destroyed = await limits.destroy_group(body.GroupId)
    if group is None and not destroyed.existed:
        raise GroupNotFound(app, body.GroupId)
    return shapes.ok()


@router.post(
    "/get_group_info",
    response_model=shapes.GetGroupInfoAnswer,
    summary="Groups with MemberNum and MaxMemberNum (the effective member limit)",
)
async def get_group_info(
    body: shapes.GetGroupInfo, app: AppId, limits: Limits, db: Db
) -> dict[str, Any]:
    effective = await limits.limits()
    infos = []
    for group_id in unique(body.GroupIdList):
        group = db.group(app, group_id)
        if group is None:
            infos.append(
                {
                    "GroupId": group_id,
                    "ErrorCode": GroupNotFound.code,
                    "ErrorInfo": "the group does not exist",
                }
            )
            continue
        infos.append(
            {
                "GroupId": group.id,
                "ErrorCode": 0,
                "Type": group.type,
                "Name": group.name,
                "Owner_Account": group.owner,
                "MemberNum": group.members,
                "MaxMemberNum": effective.for_group(group.id, group.type).value,
            }
        )
    return shapes.ok(GroupInfo=infos)


def _member_answer(item: Item) -> dict[str, Any]:
    if item.outcome is Outcome.ADDED:
        return {"Member_Account": item.id, "Result": 1}
    if item.outcome is Outcome.ALREADY or item.refusal is None:
        return {"Member_Account": item.id, "Result": 2}
    return {"Member_Account": item.id, "Result": 0, "ErrorCode": item.refusal.code}


def _new_group_id(group_type: str) -> str:
    """A fresh id in the hosted service's style: ``@TGS#`` (``@TGS#a`` for AV chat rooms)."""
    tail = "".join(secrets.choice(_GROUP_ID_LETTERS) for _ in range(10))
    return ("@TGS#a" if group_type == "AVChatRoom" else "@TGS#") + tail
