"""Converting an app's relations from the layout of limiter 0.1 (one app-wide sorted set per
relation, entries ``a\\0b``) into the per-entity keys of :mod:`limiter.store.keys`: a chunk
per script, each entry removed from the old set as it is moved, so a stopped migration
resumes where it stopped, a second run moves nothing, and the engine's decisions stay exact
for every entry already moved (run it before the new release serves the app: an entry not yet
moved is not counted)."""

from __future__ import annotations

from limiter.errors import InvalidRequest
from limiter.ops.context import Context, Op
from limiter.results import Migrated
from limiter.store import scripts
from limiter.store.keys import NAMESPACES, AppKeys
from limiter.store.requests import call

# Entries moved per script (per round trip): a script of 1,000 entries runs in about 2 ms.
CHUNK = 1000


def migrate(ctx: Context, app: str, chunk: int = CHUNK) -> Op[Migrated]:
    """Move every relation of ``app`` still in the old layout; what moved, per relation."""
    keys = ctx.keys(app)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= 10_000:
        raise InvalidRequest("chunk", "must be a whole number from 1 to 10000")
    return _migrate(app, keys, chunk)


def _migrate(app: str, keys: AppKeys, chunk: int) -> Op[Migrated]:
    moved = dict.fromkeys(NAMESPACES, 0)
    for namespace in NAMESPACES:
        while True:
            step = yield from call(scripts.migrate_chunk(keys, namespace, chunk))
            moved[namespace] += step.moved
            if step.left == 0:
                break
    return Migrated(app, moved)
