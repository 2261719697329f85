"""The engines: :class:`AsyncLimiter` (asyncio) and :class:`Limiter` (blocking), the same
operations driven against a store."""

from limiter.engine.bound import BoundLimiter
from limiter.engine.modes import AsyncLimiter, Limiter

__all__ = ["AsyncLimiter", "BoundLimiter", "Limiter"]
