"""The JSON views of the library's results, one set for the admin API and the console's
``--json``: pydantic models read from the result objects (no FastAPI here)."""

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict

from limiter.billing import Bill
from limiter.errors import Refusal, Scope
from limiter.limits import APP_LIMITS, EffectiveLimits, Status
from limiter.metering import MonthlyUsage
from limiter.plan import ExpansionGrant, Override, PlanState
from limiter.reconcile import Orphans, ReconcileReport
from limiter.reconcile.report import CountChange, Drift
from limiter.results import AuditEntry, DataStatus, Migrated, OverLimit, Usage


class _View(BaseModel):
    # ``model_validate(result)`` reads a result object's same-named attributes.
    model_config = ConfigDict(from_attributes=True)


def _whole_or_fraction(quantity: object) -> object:
    # A float alone would write a whole quantity as 2.0; the answers have always said 2.
    if isinstance(quantity, Decimal) and quantity == quantity.to_integral_value():
        return int(quantity)
    return quantity


# Exact decimals (CNY, 2 places) are written as JSON numbers, as the contract says: a Decimal
# validates to a float, and a whole quantity to an int.
Quantity = Annotated[int | float, BeforeValidator(_whole_or_fraction)]


# -- an app -----------------------------------------------------------------------------------


class PeriodView(_View):
    """The contiguous paid span containing today (or the last one, once lapsed)."""

    starts_on: date
    ends_on: date


class ExpansionView(BaseModel):
    """An expansion; `active`: today (billing timezone) is within its paid span."""

    id: str
    kind: str
    starts_on: date
    ends_on: date
    active: bool
    days: int | None

    @classmethod
    def of(cls, grant: ExpansionGrant, today: date) -> "ExpansionView":
        return cls(
            id=grant.id,
            kind=grant.kind,
            starts_on=grant.starts_on,
            ends_on=grant.ends_on,
            active=grant.active_on(today),
            days=grant.days,
        )


class OverrideView(BaseModel):
    """A custom limit; `id` is the app, user or group it applies to."""

    scope: Scope
    id: str
    limit: str
    value: int | None
    expires_at: datetime | None
    active: bool

    @classmethod
    def of(
        cls, scope: Scope, subject: str, limit: str, override: Override, now: datetime
    ) -> "OverrideView":
        return cls(
            scope=scope,
            id=subject,
            limit=limit,
            value=override.value,
            expires_at=override.expires_at,
            active=override.active(now),
        )


class LimitsView(BaseModel):
    """The effective limits now; null is unlimited; `group_members` by group type."""

    users: int | None
    friends: int | None
    groups_per_user: int | None
    group_members: dict[str, int | None]
    av_chatrooms: int | None
    history_days: int | None

    @classmethod
    def of(cls, limits: EffectiveLimits) -> "LimitsView":
        return cls(
            **{name: limits.app[name].value for name in APP_LIMITS},
            group_members={kind: limit.value for kind, limit in limits.group_members.items()},
        )


class AppView(BaseModel):
    """An app's plan, effective limits (null = unlimited) and usage."""

    app_id: str
    edition: str
    status: Status
    period: PeriodView | None
    expansions: list[ExpansionView]
    overrides: list[OverrideView]
    limits: LimitsView
    usage: Usage

    @classmethod
    def of(
        cls,
        app: str,
        plan: PlanState,
        limits: EffectiveLimits,
        usage: Usage,
        now: datetime,
        today: date,
    ) -> "AppView":
        """``limits``: the plan's limits at ``now``; ``today``: now's date, billing timezone."""
        overrides = [
            OverrideView.of("app", app, limit, o, now) for limit, o in plan.app_overrides.items()
        ]
        overrides += [
            OverrideView.of("user", user, limit, o, now)
            for (user, limit), o in sorted(plan.user_overrides.items())
        ]
        overrides += [
            OverrideView.of("group", group, "group_members", o, now)
            for group, o in sorted(plan.group_overrides.items())
        ]
        span = limits.period
        return cls(
            app_id=app,
            edition=plan.edition,
            status=limits.status,
            period=None if span is None else PeriodView.model_validate(span),
            expansions=[ExpansionView.of(grant, today) for grant in plan.expansions],
            overrides=overrides,
            limits=LimitsView.of(limits),
            usage=usage,
        )


# -- reports ----------------------------------------------------------------------------------


class OverLimitReport(BaseModel):
    """Everything above its limit now (lower limits never evict)."""

    items: list[OverLimit]

    @classmethod
    def of(cls, found: Iterable[OverLimit]) -> "OverLimitReport":
        return cls(items=list(found))


class AuditLog(BaseModel):
    """Plan changes, newest first."""

    items: list[AuditEntry]

    @classmethod
    def of(cls, entries: Iterable[AuditEntry]) -> "AuditLog":
        return cls(items=list(entries))


class ReconcileView(BaseModel):
    """What a reconcile changed; `changes` lists the first per-entity count changes."""

    app_id: str
    accounts: Drift
    friendships: Drift
    groups: Drift
    memberships: Drift
    av_chatrooms: Drift
    groups_retyped: int
    changes: list[CountChange]
    changes_total: int
    truncated: bool
    orphans: Orphans

    @classmethod
    def of(cls, report: ReconcileReport) -> "ReconcileView":
        return cls(
            app_id=report.app,
            accounts=report.accounts,
            friendships=report.friendships,
            groups=report.groups,
            memberships=report.memberships,
            av_chatrooms=report.av_chatrooms,
            groups_retyped=report.groups_retyped,
            changes=list(report.changes),
            changes_total=report.changes_total,
            truncated=report.truncated,
            orphans=report.orphans,
        )


class MigrationView(BaseModel):
    """What a migration moved into the per-entity layout, per app: entries per relation."""

    app_id: str
    moved: dict[str, int]
    total: int

    @classmethod
    def of(cls, migrated: Migrated) -> "MigrationView":
        return cls(app_id=migrated.app, moved=migrated.moved, total=migrated.total)


class MigrationsView(BaseModel):
    items: list[MigrationView]


# -- metering and billing ---------------------------------------------------------------------


class DayUsers(BaseModel):
    """Distinct users seen on one billing day."""

    day: date
    users: int


class PeakDau(BaseModel):
    """The month's highest daily active users, and the day."""

    users: int
    day: date | None


class PeakGroups(BaseModel):
    """The month's most live groups at once, and the day it was reached."""

    groups: int
    day: date | None


class DayBandwidth(BaseModel):
    """One day's peak AV bandwidth."""

    day: date
    mbps: float


class MonthlyUsageView(BaseModel):
    """What a month's bill measures, as recorded so far."""

    app_id: str
    month: str
    dau: list[DayUsers]
    peak_dau: PeakDau
    peak_groups: PeakGroups
    bandwidth: list[DayBandwidth]

    @classmethod
    def of(cls, usage: MonthlyUsage) -> "MonthlyUsageView":
        return cls(
            app_id=usage.app,
            month=str(usage.month),
            dau=[DayUsers(day=day, users=users) for day, users in usage.dau.items()],
            peak_dau=PeakDau(users=usage.peak_dau, day=usage.peak_dau_day),
            peak_groups=PeakGroups(groups=usage.peak_groups, day=usage.peak_groups_day),
            bandwidth=[
                DayBandwidth(day=day, mbps=float(mbps)) for day, mbps in usage.bandwidth.items()
            ],
        )


class BillItemView(_View):
    """One line of a bill."""

    item: str
    quantity: Quantity
    unit_price: float
    amount: float
    detail: str


class BillView(BaseModel):
    """A month's bill in CNY: prepaid items of the month and its metered usage."""

    app_id: str
    month: str
    currency: str
    items: list[BillItemView]
    total: float

    @classmethod
    def of(cls, bill: Bill) -> "BillView":
        return cls(
            app_id=bill.app,
            month=str(bill.month),
            currency=bill.currency,
            items=[BillItemView.model_validate(item) for item in bill.items],
            total=float(bill.total),
        )


# -- health -----------------------------------------------------------------------------------


class HealthView(BaseModel):
    """Whether the store answered a check of its data set's marker just now, and that
    data set's status; `resets` above 0: reconcile every app, set plans again."""

    store: Literal["reachable", "unavailable"]
    data: DataStatus

    @classmethod
    def of(cls, store: Literal["reachable", "unavailable"], status: DataStatus) -> "HealthView":
        return cls(store=store, data=status)


# -- refusals ---------------------------------------------------------------------------------


class LiftView(_View):
    """The cheapest catalog item that would raise the limit: an edition or an expansion."""

    kind: Literal["edition", "expansion"]
    id: str
    value: int | None
    price: float


class RefusalView(_View):
    """Why a limit refused an addition: the fields a 403 problem+json answer carries."""

    code: int
    limit: str
    scope: Scope
    scope_id: str
    current: int
    maximum: int | None
    edition: str
    lift: LiftView | None

    @classmethod
    def body(cls, refusal: Refusal) -> dict[str, Any]:
        """The refusal's fields as JSON values (the problem+json body spreads them)."""
        return cls.model_validate(refusal).model_dump(mode="json")
