"""What an engine needs of its store: run one request and answer its decoded reply. The Redis
stores implement it; another backend (a Redis Cluster store) is one new class."""

from __future__ import annotations

import asyncio
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

    def scan(self, pattern: str, kind: str) -> list[str]:
        """Every key matching ``pattern`` of type ``kind`` (every master of a cluster): a
        walk of the whole data set, for maintenance only (``limiter migrate --all``)."""
        ...

    def close(self) -> None: ...


class AsyncioStore(Protocol):
    """A store for the asyncio engine."""

    async def execute(self, request: Request) -> Any:
        """Run one round trip; its decoded reply, or :class:`StoreUnavailable`."""
        ...

    def submit(self, request: Pipeline[Any]) -> asyncio.Task[list[Any]]:
        """Send a pipeline from a task (a reconcile's loads) and return at once; the task
        answers its replies."""
        ...

    async def scan(self, pattern: str, kind: str) -> list[str]:
        """As :meth:`BlockingStore.scan`."""
        ...

    async def close(self) -> None: ...
