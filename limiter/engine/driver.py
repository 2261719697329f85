"""Driving one operation: the request it needs next, its reply or failure sent back in, the
round trip timed and an outage counted, until it returns. Each engine's loop only adds I/O."""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any, Generic, TypeVar

from limiter.errors import StoreUnavailable
from limiter.marker import DataWatch
from limiter.ops.context import Op
from limiter.stats import Stats
from limiter.store import Request

T = TypeVar("T")


class Step(Generic[T]):
    """An operation being driven: ``request`` to send next, until ``done`` with ``result``.

    ``outage``: the operation's first round trip is known to fail already (a marker check just
    met the outage), so it is thrown in instead of waiting on the same dead server again.
    """

    __slots__ = ("data", "done", "op", "request", "result", "started", "stats")

    def __init__(
        self, op: Op[T], stats: Stats, data: DataWatch, outage: StoreUnavailable | None = None
    ) -> None:
        self.op, self.stats, self.data = op, stats, data
        self.done = False
        self.request: Request
        self.result: T
        self._advance(lambda _: next(op), None)
        if outage is not None and not self.done:
            self._advance(op.throw, outage)

    def replied(self, reply: Any) -> None:
        self.stats.observe(self.request.name, perf_counter() - self.started)
        self._advance(self.op.send, reply)

    def failed(self, exc: Exception) -> None:
        """The round trip failed: the operation decides (an outage policy, a marker check
        that lets its request go on)."""
        if isinstance(exc, StoreUnavailable):
            self.stats.store_errors[self.request.name] += 1
            self.data.outage()
        self._advance(self.op.throw, exc)

    def _advance(self, step: Callable[[Any], Request], value: Any) -> None:
        try:
            self.request = step(value)
        except StopIteration as stop:
            self.done, self.result = True, stop.value
        self.started = perf_counter()
