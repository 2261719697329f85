"""Message history retention: how far back an app's history reaches (``history_days``), and a
query's start kept inside it."""

from __future__ import annotations

from datetime import datetime, timedelta

from limiter.errors import InvalidRequest, OutsideRetention
from limiter.limits import resolve
from limiter.ops.context import Context, Op


def history_cutoff(ctx: Context, app: str, now: datetime | None = None) -> Op[datetime | None]:
    """The oldest instant the app's message history keeps (``history_days`` back from
    ``now``); None when its history is unlimited."""
    ctx.keys(app)
    return _cutoff(ctx, app, ctx.instant(now, "now"))


def _cutoff(ctx: Context, app: str, at: datetime) -> Op[datetime | None]:
    plan = yield from ctx.plan(app)
    days = resolve(ctx.catalog, plan, at, ctx.tz).app["history_days"].value
    return None if days is None else at - timedelta(days=days)


def clamp_history(
    ctx: Context, app: str, start: datetime, *, refuse: bool = False, field: str = "start"
) -> Op[datetime]:
    """The start of a history query kept inside the app's retention: ``start``, or the
    cutoff when ``start`` reaches further back (``refuse``: raise
    :class:`OutsideRetention` naming ``field`` instead)."""
    if not isinstance(start, datetime) or start.tzinfo is None:
        raise InvalidRequest(field, "must be a timezone-aware instant")
    ctx.keys(app)
    return _clamp(ctx, app, start, ctx.clock.now(), refuse, field)


def _clamp(
    ctx: Context, app: str, start: datetime, now: datetime, refuse: bool, field: str
) -> Op[datetime]:
    cutoff = yield from _cutoff(ctx, app, now)
    if cutoff is None or start >= cutoff:
        return start
    if refuse:
        raise OutsideRetention(field, cutoff)
    return cutoff
