"""The backend's service functions behind the plain decorator: ``guard`` reserves the action
in the limiter before the function writes SQLite, and releases it if the write fails."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from examples.im_backend.db import Database
from limiter import AsyncLimiter, guard
from limiter.errors import GroupExists


@dataclass(frozen=True)
class Services:
    import_account: Callable[[str, str], Awaitable[None]]
    create_group: Callable[[str, str, str, str, str, Sequence[str]], Awaitable[None]]

    @classmethod
    def build(cls, limiter: AsyncLimiter, db: Database) -> Services:
        @guard(limiter, "register_users", app="app", users="user")
        async def import_account(app: str, user: str) -> None:
            db.add_accounts(app, [user])

        @guard(
            limiter,
            "create_group",
            app="app",
            group="group",
            type="group_type",
            owner="owner",
            members="members",
        )
        async def create_group(
            app: str, group: str, group_type: str, owner: str, name: str, members: Sequence[str]
        ) -> None:
            try:
                db.create_group(app, group, group_type, owner, name, members)
            except sqlite3.IntegrityError:
                if db.group(app, group) is None:
                    raise
                raise GroupExists(app, group) from None  # taken since the caller looked

        return cls(import_account, create_group)
