"""The store layer, the only code that speaks Redis: the key layout, one builder and decoder
per script and read, and the stores that run them."""

from limiter.store.clients import async_client, sync_client
from limiter.store.protocol import AsyncioStore, BlockingStore
from limiter.store.redis import AsyncStore, SyncStore
from limiter.store.requests import Pipeline, Request, ScriptCall, call

__all__ = [
    "AsyncStore",
    "AsyncioStore",
    "BlockingStore",
    "Pipeline",
    "Request",
    "ScriptCall",
    "SyncStore",
    "async_client",
    "call",
    "sync_client",
]
