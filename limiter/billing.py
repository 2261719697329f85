"""One app's bill for one month: prepaid purchases of the month plus the month's metered usage.

Pure: prices a :class:`BillingHistory` (replayed from the app's append-only purchase ledger,
so later changes never rewrite an earlier bill) and a :class:`~limiter.metering.MonthlyUsage`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from limiter.catalog import Catalog, Edition, Metered
from limiter.metering import Month, MonthlyUsage
from limiter.periods import Period
from limiter.plan import ExpansionGrant, LedgerEntry, PlanState, Purchase

CENT = Decimal("0.01")


@dataclass(frozen=True)
class BillItem:
    """One line of a bill. ``quantity``: periods bought, started blocks (an exact fraction
    when the catalog bills pro rata) or Mbps-days; ``amount`` is quantity x unit price."""

    item: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    detail: str


@dataclass(frozen=True)
class Bill:
    """What one app owes for one month, in the catalog's currency."""

    app: str
    month: Month
    currency: str
    items: tuple[BillItem, ...]
    total: Decimal


@dataclass(frozen=True)
class BillingHistory:
    """What bills need of an app's plan over time: each edition purchase, the paid days each
    edition was in effect, and every expansion bought (``ended_on`` set when removed early)."""

    packages: tuple[tuple[str, Purchase], ...] = ()
    paid: tuple[tuple[str, Period], ...] = ()
    expansions: tuple[ExpansionGrant, ...] = ()

    @classmethod
    def of_plan(cls, plan: PlanState) -> BillingHistory:
        """The history a plan's current state implies (for an app with no ledger yet)."""
        return cls(
            packages=tuple((plan.edition, purchase) for purchase in plan.purchases),
            paid=tuple((plan.edition, period) for period in plan.periods),
            expansions=plan.expansions,
        )

    @classmethod
    def replay(cls, ledger: Sequence[LedgerEntry], current: PlanState) -> BillingHistory:
        """Replay the purchase ledger: an edition change on day D replaces the paid days from
        D on; a renewal adds periods; a removal ends a grant the day before it. Without a
        ledger, ``current`` stands for the history."""
        if not ledger:
            return cls.of_plan(current)
        packages: list[tuple[str, Purchase]] = []
        paid: list[tuple[str, Period]] = []
        grants: dict[str, ExpansionGrant] = {}
        for entry in ledger:
            if entry.event == "baseline" and entry.plan is not None:
                before = cls.of_plan(entry.plan)
                packages += before.packages
                paid += before.paid
                grants.update((grant.id, grant) for grant in before.expansions)
            elif entry.event in ("edition", "renewal") and entry.edition is not None:
                if entry.event == "edition":
                    paid = [(e, cut) for e, p in paid if (cut := _until(p, entry.on)) is not None]
                paid += [(entry.edition, period) for period in entry.periods]
                if entry.purchase is not None:
                    packages.append((entry.edition, entry.purchase))
            elif entry.event == "expansion" and entry.grant is not None:
                grants[entry.grant.id] = entry.grant
            elif entry.event == "removal" and entry.removed in grants:
                grant = grants[entry.removed]
                grants[entry.removed] = replace(grant, ended_on=entry.on - timedelta(days=1))
        return cls(tuple(packages), tuple(paid), tuple(grants.values()))


def _until(period: Period, day: date) -> Period | None:
    """The part of ``period`` before ``day``."""
    if period.starts_on >= day:
        return None
    return Period(period.starts_on, min(period.ends_on, day - timedelta(days=1)))


def compute_bill(
    catalog: Catalog, history: BillingHistory | PlanState, usage: MonthlyUsage
) -> Bill:
    """Price ``usage.month`` for one app.

    Prepaid items (each edition's package, prepaid expansions) are charged on the month their
    purchase date falls in, whatever happened since. Usage items are charged on the month they
    measure, when a paid edition was in effect on a day of it (the edition with the most paid
    days that month sets the included DAU); a settled expansion only when it was in effect on
    one of those paid days. A free edition owes nothing.
    """
    if isinstance(history, PlanState):
        history = BillingHistory.of_plan(history)
    month = usage.month
    items = _packages(catalog, history, month)
    items += _prepaid_expansions(catalog, history, month)
    paid_days: dict[str, set[date]] = defaultdict(set)
    for name, period in history.paid:
        if name in catalog.editions and catalog.editions[name].paid:
            paid_days[name].update(day for day in month.days() if period.contains(day))
    paid_days = {name: days for name, days in paid_days.items() if days}
    if paid_days:
        # most paid days in the month, then the later edition of a tie
        edition = max(paid_days, key=lambda name: (len(paid_days[name]), max(paid_days[name])))
        every_paid_day = set().union(*paid_days.values())
        items += _usage(catalog, history, catalog.editions[edition], every_paid_day, usage)
    total = sum((item.amount for item in items), Decimal(0)).quantize(CENT)
    return Bill(usage.app, month, catalog.currency, tuple(items), total)


# -- prepaid ----------------------------------------------------------------------------------


def _packages(catalog: Catalog, history: BillingHistory, month: Month) -> list[BillItem]:
    by_edition: dict[str, list[Purchase]] = defaultdict(list)
    for name, purchase in history.packages:
        edition = catalog.editions.get(name)
        if edition is not None and edition.paid and month.contains(purchase.purchased_on):
            by_edition[name].append(purchase)
    items = []
    for name in sorted(by_edition):
        bought = sorted(by_edition[name], key=lambda p: p.purchased_on)
        months = sum(p.months for p in bought)
        dates = ", ".join(f"{p.purchased_on} ({_count(p.months, 'month')})" for p in bought)
        detail = f"{_count(months, 'period')} of {name} bought: {dates}"
        price = catalog.editions[name].price
        items.append(_item(f"package:{name}", Decimal(months), price, detail))
    return items


def _prepaid_expansions(catalog: Catalog, history: BillingHistory, month: Month) -> list[BillItem]:
    by_kind: dict[str, list[ExpansionGrant]] = defaultdict(list)
    for grant in history.expansions:
        spec = catalog.expansions.get(grant.kind)
        if spec is not None and spec.period == "prepaid" and month.contains(grant.purchased_on):
            by_kind[grant.kind].append(grant)
    items = []
    for kind in sorted(by_kind):
        grants = sorted(by_kind[kind], key=lambda grant: grant.purchased_on)
        periods = sum(len(grant.periods) for grant in grants)
        spans = ", ".join(
            f"{grant.purchased_on} ({_count(len(grant.periods), 'month')}, through {grant.ends_on})"
            for grant in grants
        )
        detail = f"{_count(periods, 'period')} bought: {spans}"
        items.append(
            _item(f"expansion:{kind}", Decimal(periods), catalog.expansions[kind].price, detail)
        )
    return items


# -- usage ------------------------------------------------------------------------------------


def _usage(
    catalog: Catalog,
    history: BillingHistory,
    edition: Edition,
    paid_days: set[date],
    usage: MonthlyUsage,
) -> list[BillItem]:
    items = _peak_over(
        catalog,
        "dau_overage",
        "peak DAU",
        usage.peak_dau,
        usage.peak_dau_day,
        edition.included_dau,
        "included",
    )
    items += _settled_expansions(catalog, history, paid_days, usage)
    items += _peak_over(
        catalog, "peak_groups", "peak groups", usage.peak_groups, usage.peak_groups_day, 0, "free"
    )
    bandwidth = catalog.metered.get("av_bandwidth")
    if bandwidth is not None:
        items.extend(_bandwidth(bandwidth, usage))
    return items


def _peak_over(
    catalog: Catalog,
    name: str,
    what: str,
    peak: int,
    day: date | None,
    allowance: int,
    kind: str,
) -> list[BillItem]:
    """A metered item on a month's peak above ``allowance`` plus the item's own free part:
    ``dau_overage`` over the edition's included DAU, ``peak_groups`` over the free groups."""
    metered = catalog.metered.get(name)
    if metered is None:
        return []
    allowed = allowance + metered.free
    over = max(0, peak - allowed)
    quantity = _blocks(Decimal(over), metered.block, metered.rounding)
    if not quantity:
        return []
    detail = (
        f"{what} {peak}{_on(day)}, {over} over the {kind} {allowed}: "
        f"{_blocks_text(quantity, metered.block, metered.rounding)}"
    )
    return [_item(name, quantity, metered.price, detail)]


def _settled_expansions(
    catalog: Catalog, history: BillingHistory, paid_days: set[date], usage: MonthlyUsage
) -> list[BillItem]:
    """Expansions charged per started block of the month's peak DAU (``history_extension``):
    one line per kind when any grant of it was in effect on a paid day of the month."""
    items = []
    for kind in sorted(catalog.expansions):
        spec = catalog.expansions[kind]
        if spec.period != "settled" or spec.per != "peak_dau":
            continue
        active = [
            grant
            for grant in history.expansions
            if grant.kind == kind and any(grant.active_on(day) for day in paid_days)
        ]
        if not active:
            continue
        block = spec.block or 1
        quantity = _blocks(Decimal(usage.peak_dau), block, "ceil")
        if not quantity:
            continue
        days = [grant.days for grant in active if grant.days is not None]
        kept = f" (history kept up to {max(days)} days)" if days else ""
        detail = (
            f"peak DAU {usage.peak_dau}{_on(usage.peak_dau_day)}: "
            f"{_blocks_text(quantity, block, 'ceil')}{kept}"
        )
        items.append(_item(kind, quantity, spec.price, detail))
    return items


def _bandwidth(metered: Metered, usage: MonthlyUsage) -> list[BillItem]:
    """Each day's peak Mbps (above any free Mbps) in blocks, summed into Mbps-days."""
    quantity = Decimal(0)
    billed_days = 0
    for mbps in usage.bandwidth.values():
        day_quantity = _blocks(
            max(Decimal(0), mbps - metered.free), metered.block, metered.rounding
        )
        if day_quantity:
            quantity += day_quantity
            billed_days += 1
    if not quantity:
        return []
    unit = "Mbps" if metered.block == 1 else f"{metered.block} Mbps"
    how = "in exact" if metered.rounding == "pro_rata" else "rounded up to started"
    detail = (
        f"{plain_number(quantity)} Mbps-days over {_count(billed_days, 'day')}: each day's peak "
        f"bandwidth {how} blocks of {unit}"
    )
    return [_item("av_bandwidth", quantity, metered.price, detail)]


# -- helpers ----------------------------------------------------------------------------------


def _item(item: str, quantity: Decimal, unit_price: Decimal, detail: str) -> BillItem:
    amount = (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
    return BillItem(item, quantity, unit_price, amount, detail)


def _blocks(over: Decimal, block: int, rounding: str) -> Decimal:
    """``over`` in blocks: started blocks, or the exact fraction when billing pro rata."""
    if over <= 0:
        return Decimal(0)
    exact = over / block
    if rounding == "pro_rata":
        return exact
    return exact.to_integral_value(rounding=ROUND_CEILING)


def _blocks_text(quantity: Decimal, block: int, rounding: str) -> str:
    if rounding == "pro_rata":
        return f"{plain_number(quantity)} blocks of {block} (pro rata)"
    started = "started block" if quantity == 1 else "started blocks"
    return f"{plain_number(quantity)} {started} of {block}"


def _on(day: date | None) -> str:
    return "" if day is None else f" on {day}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def plain_number(value: Decimal) -> str:
    """A quantity without exponent or trailing zeros: 2, 0.5, 1.50001."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
