"""Steps the IM commands share: ids taken once each, accounts checked against SQLite, and
SQLite written for what the limiter added (or the addition released if the write fails)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from examples.im_backend import shapes
from examples.im_backend.db import Database
from limiter import BatchResult
from limiter.errors import LimiterError
from limiter.fastapi import BoundLimiter

log = logging.getLogger("examples.im_backend")


def unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def checked_users(limits: BoundLimiter, users: Iterable[str], field: str) -> list[str]:
    """Ids as the limiter will take them (its id lengths and batch maximum), checked before
    a removal writes SQLite, so a request it refuses changes nothing."""
    return list(limits.check_users(list(users), field))


async def write_or_release(
    limits: BoundLimiter,
    result: BatchResult,
    write: Callable[[], None],
    requester: str | None = None,
) -> None:
    """Write SQLite for what the limiter added; if that fails, release it and re-raise."""
    try:
        write()
    except BaseException:
        try:
            await limits.release_added(result, requester=requester)
        except LimiterError as exc:
            log.error("not released, counts stay high until a reconcile: %s", exc)
        raise


def missing(db: Database, app: str, users: Iterable[str]) -> list[str]:
    """The accounts among ``users`` that were never imported, each once."""
    wanted = unique(users)
    found = db.existing_accounts(app, wanted)
    return [user for user in wanted if user not in found]


def unknown_accounts(
    db: Database, app: str, users: Iterable[str], service: str
) -> dict[str, Any] | None:
    """A FAIL answer naming the accounts that were never imported, or None if all were."""
    absent = missing(db, app, users)
    if not absent:
        return None
    info = f"not imported: {', '.join(repr(user) for user in absent)}"
    return shapes.fail(shapes.INVALID[service], info)
