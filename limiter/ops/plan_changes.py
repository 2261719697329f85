"""Plan changes: editions, renewals, expansions and overrides, each one field of the plan
written with its audit entry (and ledger entry, for a purchase) by one script."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta

from limiter.catalog import LIMIT_NAMES
from limiter.errors import InvalidRequest, PlanConflict
from limiter.limits import Status, edition_state
from limiter.ops.context import Context, Op
from limiter.periods import Period, consecutive_periods
from limiter.plan import (
    EDITION_FIELD,
    MAX_MONTHS,
    ExpansionGrant,
    LedgerEntry,
    Override,
    PlanState,
    Purchase,
    decode,
    edition_field_value,
    expansion_field,
    expansion_field_value,
    ledger_entry_value,
    override_field,
    override_field_value,
)
from limiter.store import audit, reads, scripts
from limiter.store.requests import call

USER_OVERRIDE_LIMITS = ("friends", "groups_per_user")
GROUP_OVERRIDE_LIMITS = ("group_members",)
# Who the audit log names for a change made through the Python API without an actor.
DEFAULT_ACTOR = "python"
# Tries of a renewal whose compare-and-set loses to concurrent edition changes.
_CAS_ATTEMPTS = 20


def set_edition(
    ctx: Context,
    app: str,
    edition: str,
    purchased_on: date | None = None,
    months: int = 1,
    *,
    actor: str = DEFAULT_ACTOR,
) -> Op[PlanState]:
    """Put an app on an edition; a paid one for ``months`` periods from ``purchased_on``."""
    spec = ctx.catalog.edition(edition)
    _check_months(months)
    if purchased_on is not None:
        _check_date(purchased_on, "purchased_on")
    if spec.paid and purchased_on is None:
        raise InvalidRequest("purchased_on", f"edition {edition!r} is paid: give its date")
    if not spec.paid and purchased_on is not None:
        raise InvalidRequest("purchased_on", f"edition {edition!r} is free: it has no date")
    ctx.keys(app)
    if purchased_on is None:
        return _set_edition(ctx, app, edition, (), None, actor)
    periods = _periods(purchased_on, months, "purchased_on")
    return _set_edition(ctx, app, edition, periods, Purchase(purchased_on, months), actor)


def _set_edition(
    ctx: Context,
    app: str,
    edition: str,
    periods: tuple[Period, ...],
    purchase: Purchase | None,
    actor: str,
) -> Op[PlanState]:
    purchases = () if purchase is None else (purchase,)
    value = edition_field_value(edition, periods, purchases)
    ledger = LedgerEntry("edition", ctx.today(), edition, periods, purchase)
    yield from _write(ctx, app, EDITION_FIELD, value, ("set_edition", actor), None, ledger)
    return (yield from ctx.plan(app, fresh=True))


def renew(ctx: Context, app: str, months: int = 1, *, actor: str = DEFAULT_ACTOR) -> Op[PlanState]:
    """Extend a paid edition: from the day after its end while active or in grace, else
    from today."""
    _check_months(months)
    ctx.keys(app)
    return _renew(ctx, app, months, actor)


def _renew(ctx: Context, app: str, months: int, actor: str) -> Op[PlanState]:
    keys = ctx.keys(app)
    for _ in range(_CAS_ATTEMPTS):
        raw = yield from call(reads.plan_field(keys, EDITION_FIELD))
        plan = decode({EDITION_FIELD: raw} if raw else {}, ctx.settings.default_edition)
        if not ctx.catalog.edition(plan.edition).paid:
            raise PlanConflict(
                f"app {app!r} is on free edition {plan.edition!r}: "
                "set a paid edition instead of renewing"
            )
        now = ctx.clock.now()
        today = ctx.today()
        state = edition_state(ctx.catalog, plan, now, ctx.tz)
        last_day = max((p.ends_on for p in plan.periods), default=None)
        if state.status is not Status.SUSPENDED and state.period is not None:
            start = state.period.ends_on + timedelta(days=1)
        elif last_day is not None and last_day >= today:  # bought ahead, not begun
            start = last_day + timedelta(days=1)
        else:
            start = today
        added = _periods(start, months, "months")
        bought = Purchase(today, months)
        value = edition_field_value(plan.edition, plan.periods + added, (*plan.purchases, bought))
        ledger = LedgerEntry("renewal", today, plan.edition, added, bought)
        change = ("renew", actor)
        if (yield from _write(ctx, app, EDITION_FIELD, value, change, raw or "", ledger)):
            return (yield from ctx.plan(app, fresh=True))
    raise PlanConflict(f"app {app!r}: the edition kept changing during the renewal")


def add_expansion(
    ctx: Context,
    app: str,
    kind: str,
    purchased_on: date,
    months: int = 1,
    days: int | None = None,
    *,
    actor: str = DEFAULT_ACTOR,
) -> Op[ExpansionGrant]:
    """Record an expansion bought on ``purchased_on`` for ``months`` periods."""
    spec = ctx.catalog.expansion(kind)
    _check_months(months)
    _check_date(purchased_on, "purchased_on")
    if spec.raises.chosen_by_buyer:
        low, high = spec.raises.min_value, spec.raises.max_value
        if (
            not isinstance(days, int)
            or (low is not None and days < low)
            or (high is not None and days > high)
        ):
            raise InvalidRequest("days", f"{kind} needs days between {low} and {high}")
    elif days is not None:
        raise InvalidRequest("days", f"{kind} takes no days")
    grant = ExpansionGrant(
        secrets.token_hex(8), kind, _periods(purchased_on, months, "purchased_on"), days
    )
    ctx.keys(app)
    return _add_expansion(ctx, app, grant, spec.editions, actor)


def _add_expansion(
    ctx: Context, app: str, grant: ExpansionGrant, editions: tuple[str, ...], actor: str
) -> Op[ExpansionGrant]:
    plan = yield from ctx.plan(app, fresh=True)
    if plan.edition not in editions:
        needed = " or ".join(editions)
        raise PlanConflict(
            f"expansion {grant.kind!r} needs edition {needed}; app {app!r} is on {plan.edition!r}"
        )
    ledger = LedgerEntry("expansion", ctx.today(), periods=grant.periods, grant=grant)
    field, value = expansion_field(grant.id), expansion_field_value(grant)
    yield from _write(ctx, app, field, value, ("add_expansion", actor), "", ledger)
    return grant


def remove_expansion(
    ctx: Context, app: str, grant_id: str, *, actor: str = DEFAULT_ACTOR
) -> Op[bool]:
    """Stop an expansion from today; False when there was none with that id. Its purchase
    stays on the bill of the month it was bought in (the ledger keeps it)."""
    ctx.keys(app)
    if not isinstance(grant_id, str) or not 0 < len(grant_id) <= 64:
        raise InvalidRequest("id", f"not an expansion id: {grant_id!r}")
    ledger = LedgerEntry("removal", ctx.today(), removed=grant_id)
    change = ("remove_expansion", actor)
    return _write(ctx, app, expansion_field(grant_id), None, change, None, ledger)


def set_override(
    ctx: Context,
    app: str,
    limit: str,
    value: int | None,
    expires_at: datetime | None = None,
    *,
    user: str | None = None,
    group: str | None = None,
    actor: str = DEFAULT_ACTOR,
) -> Op[Override]:
    """Set a custom limit for the app, one user or one group (None = unlimited)."""
    field = _override_field(ctx, limit, user, group)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidRequest("value", "must be a whole number >= 0, or None for unlimited")
    if expires_at is not None and (
        not isinstance(expires_at, datetime) or expires_at.tzinfo is None
    ):
        raise InvalidRequest("expires_at", "must be a timezone-aware instant")
    ctx.keys(app)
    return _set_override(ctx, app, field, Override(value, expires_at), actor)


def _set_override(
    ctx: Context, app: str, field: str, override: Override, actor: str
) -> Op[Override]:
    yield from _write(ctx, app, field, override_field_value(override), ("set_override", actor))
    return override


def clear_override(
    ctx: Context,
    app: str,
    limit: str,
    *,
    user: str | None = None,
    group: str | None = None,
    actor: str = DEFAULT_ACTOR,
) -> Op[bool]:
    """Remove a custom limit; False when there was none."""
    field = _override_field(ctx, limit, user, group)
    ctx.keys(app)
    return _write(ctx, app, field, None, ("clear_override", actor))


def _override_field(ctx: Context, limit: str, user: str | None, group: str | None) -> str:
    if limit not in LIMIT_NAMES:
        known = ", ".join(LIMIT_NAMES)
        raise InvalidRequest("limit", f"unknown limit {limit!r} (known: {known})")
    if user is not None and group is not None:
        raise InvalidRequest("user", "an override is for a user or a group, not both")
    if user is not None:
        if limit not in USER_OVERRIDE_LIMITS:
            raise InvalidRequest("limit", f"per-user overrides are for {USER_OVERRIDE_LIMITS}")
        return override_field(limit, user=ctx.ids.user(user))
    if group is not None:
        if limit not in GROUP_OVERRIDE_LIMITS:
            raise InvalidRequest("limit", "per-group overrides are for group_members")
        return override_field(limit, group=ctx.ids.group(group))
    return override_field(limit)


def _write(
    ctx: Context,
    app: str,
    field: str,
    value: str | None,
    change: tuple[str, str],
    expected: str | None = None,
    ledger: LedgerEntry | None = None,
) -> Op[bool]:
    """Set (or, with ``value`` None, delete) one plan field and log it in the audit list
    (and ``ledger`` in the purchase ledger); with ``expected``, only if the field still
    holds it ("" = absent). ``change`` is the audit's (action, actor). Forgets this
    process's copy of the plan."""
    action, actor = change
    script = scripts.plan_write(
        ctx.keys(app),
        field,
        value,
        expected,
        audit.opening(ctx.clock.now(), actor, action, field),
        ctx.settings.audit_entries,
        None if ledger is None else ledger_entry_value(ledger),
        ctx.today().isoformat(),
    )
    done = yield from call(script)
    ctx.forget_plan(app)
    if done:
        ctx.stats.admin_changes[action] += 1
    return done


def _periods(start: date, months: int, field: str) -> tuple[Period, ...]:
    try:
        return consecutive_periods(start, months)
    except (ValueError, OverflowError):  # past 9999-12-31
        raise InvalidRequest(field, "the periods would end after 9999-12-31") from None


def _check_months(months: int) -> None:
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise InvalidRequest("months", f"must be a whole number from 1 to {MAX_MONTHS}")


def _check_date(value: object, field: str) -> None:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidRequest(field, f"must be a calendar date, not {value!r}")
