"""An asyncio engine bound to one app: the operations an IM backend calls while serving a
request, without the ``app`` argument (the FastAPI integration hands these out)."""

from __future__ import annotations

from collections.abc import Iterable

from limiter.engine.modes import AsyncLimiter
from limiter.engine.surface import bound
from limiter.ops import accounts, friends, groups, history, metering, reports, reserving


class BoundLimiter:
    """The engine bound to the request's app: the same operations without the ``app`` argument."""

    def __init__(self, limiter: AsyncLimiter, app: str) -> None:
        self.limiter = limiter
        self.app = app

    def check_users(self, values: Iterable[str] | str, field: str) -> tuple[str, ...]:
        """Valid user ids as the engine takes them (see :meth:`AsyncLimiter.check_users`)."""
        return self.limiter.check_users(values, field)

    register_users = bound(accounts.register_users)
    delete_users = bound(accounts.delete_users)
    add_friends = bound(friends.add_friends)
    remove_friends = bound(friends.remove_friends)
    create_group = bound(groups.create_group)
    add_members = bound(groups.add_members)
    remove_members = bound(groups.remove_members)
    destroy_group = bound(groups.destroy_group)
    release_added = bound(reserving.release_added)
    limits = bound(reports.limits)
    user_usage = bound(reports.user_usage)
    record_login = bound(metering.record_login)
    clamp_history = bound(history.clamp_history)
