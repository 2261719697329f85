"""What an engine needs of its store: run one request and answer its decoded reply. The Redis
stores implement it; another backend (a Redis Cluster store) is one new class."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Protocol

from limiter.store.requests import Pipeline, Request


class BlockingStore(Protocol):
    """A store for the blocking engine."""

    def execute(self, request: Request) -> Any:
        """Run one round trip; its decoded reply, or :class:`StoreUnavailable`."""
        ...

    def submit(self, request: Pipeline[Any]) -> Future[list[Any]]:
        """Send a pipeline in the background (a reconcile's loads) and return at once."""
        ...

    def close(self) -> None: ...


class AsyncioStore(Protocol):
    """A store for the asyncio engine."""

    async def execute(self, request: Request) -> Any:
        """Run one round trip; its decoded reply, or :class:`StoreUnavailable`."""
        ...

    async def close(self) -> None: ...
