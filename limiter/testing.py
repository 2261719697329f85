"""Helpers for testing code that uses limiter: a clock you move by hand, and engines on a
fresh in-process store (needs ``limiter[memory]``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from limiter.clock import Clock
from limiter.engine import AsyncLimiter, Limiter
from limiter.settings import Settings


class ManualClock:
    """A clock that stands still until told to move; pass it to the limiter in tests."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("instant must be timezone-aware")
        self._now = instant

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def _fresh_settings(settings: dict[str, Any]) -> Settings:
    settings.setdefault("cache_seconds", 0)
    return Settings(redis_url=f"memory://test-{uuid.uuid4().hex}", **settings)


def memory_limiter(*, clock: Clock | None = None, **settings: Any) -> Limiter:
    """A sync engine on its own empty in-process store; ``settings`` as in :class:`Settings`."""
    return Limiter.from_settings(_fresh_settings(settings), clock=clock)


def memory_async_limiter(*, clock: Clock | None = None, **settings: Any) -> AsyncLimiter:
    """An async engine on its own empty in-process store; ``settings`` as in :class:`Settings`."""
    return AsyncLimiter.from_settings(_fresh_settings(settings), clock=clock)
