"""How a script's outcome becomes a decision: outcome codes, refusals with what would lift
them, shadow mode, the suspended check, counting in the statistics and the outage policy."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from limiter.errors import (
    InvalidRequest,
    Lift,
    NotRegistered,
    Refusal,
    Refused,
    Scope,
    StoreUnavailable,
    Suspended,
)
from limiter.limits import EffectiveLimits, Limit, Status
from limiter.ops.context import Context, Op
from limiter.results import BatchResult, Item, Outcome

T = TypeVar("T")
log = logging.getLogger("limiter")

# A script's outcome of one item: 1 added, 2 already there, 3 not a registered account (accounts
# first), a positive IM code refused, the negated code when shadow mode let a refusal through.
ADDED, ALREADY, NOT_REGISTERED = 1, 2, 3


def require_active(ctx: Context, app: str, limits: EffectiveLimits) -> None:
    """Additions need an edition that is not suspended (60020)."""
    if limits.status is Status.SUSPENDED:
        edition = ctx.catalog.edition(limits.edition)
        lift = Lift("edition", limits.edition, None, edition.price)
        raise Suspended(Refusal(60020, "package", "app", app, 0, None, limits.edition, lift))


def refusal(
    ctx: Context,
    limits: EffectiveLimits,
    code: int,
    limit: str,
    scope: Scope,
    scope_id: str,
    current: int,
    found: Limit,
    group_type: str | None = None,
) -> Refusal:
    """A refusal of ``limit`` with what would lift it."""
    lift = limits.lift(ctx.catalog, limit, found, group_type)
    return Refusal(code, limit, scope, scope_id, current, found.value, limits.edition, lift)


def judge(
    ctx: Context, limit: str, outcome: int, refused: Callable[[int], Refusal]
) -> tuple[Outcome, Refusal | None]:
    """Map a script's outcome code to an :class:`Outcome`, counting the decision."""
    if outcome == ALREADY:
        return Outcome.ALREADY, None
    if outcome == ADDED:
        ctx.stats.decisions[(limit, "allowed")] += 1
        return Outcome.ADDED, None
    if outcome == NOT_REGISTERED:
        ctx.stats.decisions[("accounts", "not_registered")] += 1
        return Outcome.NOT_REGISTERED, None
    if outcome < 0:
        waived = refused(-outcome)
        shadowed(ctx, waived)
        return Outcome.ADDED, waived
    ctx.stats.decisions[(limit, "refused")] += 1
    return Outcome.REFUSED, refused(outcome)


def shadowed(ctx: Context, waived: Refusal) -> None:
    """Count and log a refusal that shadow mode let through."""
    ctx.stats.decisions[(waived.limit, "shadow_refused")] += 1
    log.warning("shadow mode let through: %s", waived.describe())


def refuse(ctx: Context, why: Refusal, also: tuple[Refusal, ...] = ()) -> Refused:
    """The exception of a whole-call refusal, counted."""
    ctx.stats.decisions[(why.limit, "refused")] += 1
    return Refused(why, also=also)


def raise_first_refusal(
    ctx: Context,
    app: str,
    ids: Sequence[str],
    outcomes: Sequence[int],
    refusal_at: Callable[[int], Refusal],
) -> None:
    """All or nothing: raise for a reply in which nothing was written: :class:`NotRegistered`
    naming every id that is not an account, else the first refusal."""
    pairs = zip(ids, outcomes, strict=True)
    strangers = tuple(i for i, outcome in pairs if outcome == NOT_REGISTERED)
    if strangers:
        raise not_registered(ctx, app, strangers)
    for index, outcome in enumerate(outcomes):
        if outcome > ALREADY:
            raise refuse(ctx, refusal_at(index))


def not_registered(ctx: Context, app: str, ids: tuple[str, ...]) -> NotRegistered:
    """The exception of a call refused because it names ids that are not accounts, counted."""
    ctx.stats.decisions[("accounts", "not_registered")] += len(ids)
    return NotRegistered(app, ids)


def guarded(ctx: Context, op: Op[T], fallback: Callable[[], T], what: str) -> Op[T]:
    """Apply the outage policy: ``closed`` raises, ``open`` answers ``fallback()``."""
    if ctx.settings.outage == "closed":
        return op  # an outage raises through as it is: no wrapper on every round trip
    return _open_outage(op, fallback, what)


def _open_outage(op: Op[T], fallback: Callable[[], T], what: str) -> Op[T]:
    try:
        return (yield from op)
    except StoreUnavailable:
        log.warning("Redis unavailable: %s allowed undecided (outage policy open)", what)
        return fallback()


def all_added(app: str, ids: tuple[str, ...]) -> BatchResult:
    """The degraded answer of an addition allowed undecided."""
    return BatchResult(app, tuple(Item(i, Outcome.ADDED) for i in ids), degraded=True)


def all_absent(app: str, ids: tuple[str, ...]) -> BatchResult:
    """The degraded answer of a removal that could not run."""
    return BatchResult(app, tuple(Item(i, Outcome.ABSENT) for i in ids), degraded=True)


def switch(value: bool | str, field: str) -> bool:
    """A yes/no input: a bool, or "true"/"false"/"1"/"0" as a query string carries it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    raise InvalidRequest(field, f"must be true or false, not {value!r}")
