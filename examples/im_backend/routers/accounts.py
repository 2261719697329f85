"""``im_open_login_svc``: importing accounts (one through the guarded service, up to 100
through the limiter's dependency) and deleting them with their friendships and memberships."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from examples.im_backend import shapes
from examples.im_backend.dependencies import AppId, Db, Guarded, Limits, one_app_at_a_time
from examples.im_backend.routers.common import checked_users, unique, write_or_release
from limiter import Outcome

router = APIRouter(prefix="/im_open_login_svc")


@router.post(
    "/account_import",
    response_model=shapes.Answer,
    summary="Import one account (decorator style: guard on the service function)",
)
@one_app_at_a_time
async def account_import(
    body: shapes.AccountImport, app: AppId, services: Guarded, db: Db
) -> dict[str, Any]:
    await services.import_account(app, body.UserID)
    return shapes.ok()


@router.post(
    "/multiaccount_import",
    response_model=shapes.MultiAccountImportAnswer,
    summary="Import up to 100 accounts; those past the account cap fail (70398)",
)
@one_app_at_a_time
async def multiaccount_import(
    body: shapes.MultiAccountImport, app: AppId, limits: Limits, db: Db
) -> dict[str, Any]:
    accounts = unique(body.Accounts)
    result = await limits.register_users(accounts)
    kept = [item.id for item in result.items if item.outcome is not Outcome.REFUSED]
    await write_or_release(limits, result, lambda: db.add_accounts(app, kept))
    reasons = [
        {
            "UserID": item.id,
            "ErrorCode": item.refusal.code,
            "ErrorInfo": item.refusal.describe(),
        }
        for item in result.refused
        if item.refusal is not None
    ]
    return shapes.ok(FailAccounts=[reason["UserID"] for reason in reasons], FailReasons=reasons)


@router.post(
    "/account_delete",
    response_model=shapes.AccountDeleteAnswer,
    summary="Delete accounts with their friendships and memberships",
)
@one_app_at_a_time
async def account_delete(
    body: shapes.AccountDelete, app: AppId, limits: Limits, db: Db
) -> dict[str, Any]:
    users = checked_users(limits, (item.UserID for item in body.DeleteItem), "DeleteItem")
    existing = db.existing_accounts(app, users)
    db.delete_accounts(app, users)
    deleted = await limits.delete_users(users)
    # A retry after an outage finds the account gone from SQLite, still in the limiter.
    existing |= {user.id for user in deleted.users if user.registered}
    items = [
        {"UserID": user, "ResultCode": 0, "ResultInfo": ""}
        if user in existing
        else {
            "UserID": user,
            "ResultCode": shapes.ACCOUNT_MISSING,
            "ResultInfo": "the account does not exist",
        }
        for user in users
    ]
    return shapes.ok(ResultItem=items)
