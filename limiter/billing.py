"""One app's bill for one month: prepaid purchases of the month plus the month's metered usage.

Pure: prices a :class:`~limiter.plan.PlanState` and a :class:`~limiter.metering.MonthlyUsage`;
:func:`billed_plan` first rebuilds, from the app's purchase ledger, the plan as it stood for the
month billed, so later changes (a new edition, a removed expansion) never rewrite it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

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

    def as_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "quantity": _json_quantity(self.quantity),
            "unit_price": float(self.unit_price),
            "amount": float(self.amount),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Bill:
    """What one app owes for one month, in the catalog's currency."""

    app: str
    month: Month
    currency: str
    items: tuple[BillItem, ...]
    total: Decimal

    def as_dict(self) -> dict[str, Any]:
        """The admin API's answer: exact decimals serialized as JSON numbers."""
        return {
            "app_id": self.app,
            "month": str(self.month),
            "currency": self.currency,
            "items": [item.as_dict() for item in self.items],
            "total": float(self.total),
        }


def billed_plan(current: PlanState, ledger: Sequence[LedgerEntry], month: Month) -> PlanState:
    """The plan a bill of ``month`` prices: every purchase and expansion the ledger recorded,
    and the paid days each edition change left in effect (a change on day D replaces the paid
    days from D on). The edition is the paid one in effect or bought that month, else the
    current one. An app with no ledger (set up before it existed) is billed on ``current``."""
    if not ledger:
        return current
    paid: list[tuple[str, Period]] = []
    purchases: list[tuple[str, Purchase]] = []
    grants: dict[str, ExpansionGrant] = {}
    for entry in ledger:
        if entry.event == "edition":
            paid = [(e, cut) for e, p in paid if (cut := _until(p, entry.on)) is not None]
        if entry.event in ("edition", "renewal") and entry.edition is not None:
            paid += [(entry.edition, period) for period in entry.periods]
            if entry.purchase is not None:
                purchases.append((entry.edition, entry.purchase))
        elif entry.event == "expansion" and entry.grant is not None:
            grants[entry.grant.id] = entry.grant
        elif entry.event == "removal" and entry.removed in grants:
            grant = grants[entry.removed]
            grants[entry.removed] = replace(grant, ended_on=entry.on - timedelta(days=1))
    in_month = [e for e, p in paid if _overlaps(p, month)]
    in_month += [e for e, p in purchases if month.contains(p.purchased_on)]
    edition = in_month[0] if in_month else current.edition
    return PlanState(
        edition,
        periods=tuple(p for e, p in paid if e == edition),
        purchases=tuple(p for e, p in purchases if e == edition),
        expansions=tuple(grants.values()),
    )


def _until(period: Period, day: date) -> Period | None:
    """The part of ``period`` before ``day``."""
    if period.starts_on >= day:
        return None
    return Period(period.starts_on, min(period.ends_on, day - timedelta(days=1)))


def compute_bill(catalog: Catalog, plan: PlanState, usage: MonthlyUsage) -> Bill:
    """Price ``usage.month`` for one app.

    Prepaid items (the package, prepaid expansions) are charged on the month their purchase
    date falls in; usage items on the month they measure, and only when the paid edition was in
    effect on at least one day of it. A free edition owes nothing.
    """
    month = usage.month
    edition = catalog.edition(plan.edition)
    items: list[BillItem] = []
    if edition.paid:
        items.extend(_package(plan, edition, month))
        items.extend(_prepaid_expansions(catalog, plan, month))
        if any(_overlaps(period, month) for period in plan.periods):
            items.extend(_usage(catalog, plan, edition, usage))
    total = sum((item.amount for item in items), Decimal(0)).quantize(CENT)
    return Bill(usage.app, month, catalog.currency, tuple(items), total)


# -- prepaid ----------------------------------------------------------------------------------


def _package(plan: PlanState, edition: Edition, month: Month) -> list[BillItem]:
    bought = [p for p in plan.purchases if month.contains(p.purchased_on)]
    if not bought:
        return []
    months = sum(p.months for p in bought)
    dates = ", ".join(
        f"{p.purchased_on} ({_count(p.months, 'month')})"
        for p in sorted(bought, key=lambda p: p.purchased_on)
    )
    detail = f"{_count(months, 'period')} of {plan.edition} bought: {dates}"
    return [_item(f"package:{plan.edition}", Decimal(months), edition.price, detail)]


def _prepaid_expansions(catalog: Catalog, plan: PlanState, month: Month) -> list[BillItem]:
    by_kind: dict[str, list[ExpansionGrant]] = defaultdict(list)
    for grant in plan.expansions:
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
    catalog: Catalog, plan: PlanState, edition: Edition, usage: MonthlyUsage
) -> list[BillItem]:
    items: list[BillItem] = []
    dau = catalog.metered.get("dau_overage")
    if dau is not None:
        included = edition.included_dau + dau.free
        over = max(0, usage.peak_dau - included)
        quantity = _blocks(Decimal(over), dau.block, dau.rounding)
        if quantity:
            detail = (
                f"peak DAU {usage.peak_dau}{_on(usage.peak_dau_day)}, {over} over the included "
                f"{included}: {_blocks_text(quantity, dau.block, dau.rounding)}"
            )
            items.append(_item("dau_overage", quantity, dau.price, detail))
    items.extend(_settled_expansions(catalog, plan, usage))
    groups = catalog.metered.get("peak_groups")
    if groups is not None:
        over = max(0, usage.peak_groups - groups.free)
        quantity = _blocks(Decimal(over), groups.block, groups.rounding)
        if quantity:
            detail = (
                f"peak groups {usage.peak_groups}{_on(usage.peak_groups_day)}, {over} over the "
                f"free {groups.free}: {_blocks_text(quantity, groups.block, groups.rounding)}"
            )
            items.append(_item("peak_groups", quantity, groups.price, detail))
    bandwidth = catalog.metered.get("av_bandwidth")
    if bandwidth is not None:
        items.extend(_bandwidth(bandwidth, usage))
    return items


def _settled_expansions(catalog: Catalog, plan: PlanState, usage: MonthlyUsage) -> list[BillItem]:
    """Expansions charged per started block of the month's peak DAU (``history_extension``):
    one line per kind when any grant of it was active on a day of the month."""
    items = []
    for kind in sorted(catalog.expansions):
        spec = catalog.expansions[kind]
        if spec.period != "settled" or spec.per != "peak_dau":
            continue
        active = [
            grant
            for grant in plan.expansions
            if grant.kind == kind
            and any(_overlaps(period, usage.month) for period in grant.in_effect())
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


def _overlaps(period: Period, month: Month) -> bool:
    return period.starts_on <= month.last_day and period.ends_on >= month.first_day


def _on(day: date | None) -> str:
    return "" if day is None else f" on {day}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def plain_number(value: Decimal) -> str:
    """A quantity without exponent or trailing zeros: 2, 0.5, 1.50001."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _json_quantity(quantity: Decimal) -> int | float:
    return int(quantity) if quantity == quantity.to_integral_value() else float(quantity)
