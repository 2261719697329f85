"""Monthly bills: prepaid items on their purchase month, usage items on the month they measure.

Every expected number is worked out by hand from the shipped price sheet (pro 999 a month with
100,000 DAU included, 10,000 per started 100,000 DAU over, and so on).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from limiter.billing import Bill, BillItem, compute_bill
from limiter.catalog import Catalog, load_catalog
from limiter.metering import Month, MonthlyUsage
from limiter.periods import Period, consecutive_periods
from limiter.plan import ExpansionGrant, PlanState, Purchase
from limiter.schemas import BillView

APP = "1400000001"
NOVEMBER = Month(2026, 11)
DECEMBER = Month(2026, 12)
CATALOG = load_catalog()


def d(text: str) -> date:
    return date.fromisoformat(text)


def pro(*purchases: tuple[str, int], expansions: tuple[ExpansionGrant, ...] = ()) -> PlanState:
    """A pro app with these purchases, each starting its periods on its purchase date
    (a renewal of a still-active package would start later; tests that need it say so)."""
    periods: tuple[Period, ...] = ()
    for on, months in purchases:
        periods += consecutive_periods(d(on), months)
    return PlanState(
        edition="pro",
        periods=periods,
        purchases=tuple(Purchase(d(on), months) for on, months in purchases),
        expansions=expansions,
    )


def grant(kind: str, on: str, months: int = 1, days: int | None = None) -> ExpansionGrant:
    return ExpansionGrant(
        id=f"{kind}-{on}", kind=kind, periods=consecutive_periods(d(on), months), days=days
    )


def usage(
    month: Month = NOVEMBER,
    *,
    peak_dau: int = 0,
    peak_dau_day: str | None = None,
    peak_groups: int = 0,
    bandwidth: Mapping[str, str] | None = None,
) -> MonthlyUsage:
    return MonthlyUsage(
        app=APP,
        month=month,
        peak_dau=peak_dau,
        peak_dau_day=None if peak_dau_day is None else d(peak_dau_day),
        peak_groups=peak_groups,
        bandwidth={d(day): Decimal(mbps) for day, mbps in (bandwidth or {}).items()},
    )


def lines(bill: Bill) -> list[tuple[Any, ...]]:
    """(item, quantity, unit price, amount) of each line; a Decimal quantity equals an int."""
    return [(i.item, i.quantity, i.unit_price, i.amount) for i in bill.items]


def line(bill: Bill, item: str) -> BillItem:
    (found,) = [i for i in bill.items if i.item == item]
    return found


def custom_catalog(**metered: dict[str, Any] | None) -> Catalog:
    """The shipped catalog with some metered entries changed (None removes one)."""
    data = CATALOG.model_dump()
    for name, changes in metered.items():
        if changes is None:
            del data["metered"][name]
        else:
            data["metered"][name] = {**data["metered"][name], **changes}
    return Catalog.model_validate(data)


# -- the example ------------------------------------------------------------------------

# pro bought 2026-11-03 (through 2026-12-02), group_members_2000 bought 2026-11-10 (through
# 2026-12-09).
EXAMPLE = pro(("2026-11-03", 1), expansions=(grant("group_members_2000", "2026-11-10"),))


def test_example_bill_for_november() -> None:
    bill = compute_bill(
        CATALOG,
        EXAMPLE,
        usage(peak_dau=250_001, peak_dau_day="2026-11-20", peak_groups=100_000),
    )

    assert (bill.app, bill.month, bill.currency) == (APP, NOVEMBER, "CNY")
    assert lines(bill) == [
        ("package:pro", 1, Decimal("999"), Decimal("999.00")),
        ("expansion:group_members_2000", 1, Decimal("500"), Decimal("500.00")),
        # 250,001 - 100,000 = 150,001 over: 2 started blocks of 100,000
        ("dau_overage", 2, Decimal("10000"), Decimal("20000.00")),
    ]
    # 100,000 groups are free: no peak_groups line
    assert bill.total == Decimal("21499.00")
    assert line(bill, "dau_overage").detail == (
        "peak DAU 250001 on 2026-11-20, 150001 over the included 100000: 2 started blocks of 100000"
    )
    assert line(bill, "package:pro").detail == "1 period of pro bought: 2026-11-03 (1 month)"
    assert line(bill, "expansion:group_members_2000").detail == (
        "1 period bought: 2026-11-10 (1 month, through 2026-12-09)"
    )


def test_amounts_are_exact_two_place_decimals() -> None:
    bill = compute_bill(CATALOG, EXAMPLE, usage(peak_dau=250_001))

    for item in bill.items:
        assert item.amount.as_tuple().exponent == -2
    assert bill.total.as_tuple().exponent == -2


# -- prepaid items: on the month of the purchase date -----------------------------------------


def test_two_purchases_in_one_month_make_one_package_line() -> None:
    # set_edition on 11-03 for a month, then a renewal bought on 11-25 (periods 11-03..12-02
    # and 12-03..2027-01-02)
    plan = PlanState(
        edition="pro",
        periods=consecutive_periods(d("2026-11-03"), 2),
        purchases=(Purchase(d("2026-11-03"), 1), Purchase(d("2026-11-25"), 1)),
    )

    bill = compute_bill(CATALOG, plan, usage())

    assert lines(bill) == [("package:pro", 2, Decimal("999"), Decimal("1998.00"))]
    assert bill.total == Decimal("1998.00")
    assert line(bill, "package:pro").detail == (
        "2 periods of pro bought: 2026-11-03 (1 month), 2026-11-25 (1 month)"
    )


def test_two_months_in_one_purchase_are_charged_on_the_purchase_month_only() -> None:
    plan = pro(("2026-11-03", 2))  # 11-03..12-02, 12-03..2027-01-02

    november = compute_bill(CATALOG, plan, usage(peak_dau=250_001))
    december = compute_bill(CATALOG, plan, usage(DECEMBER, peak_dau=250_001))

    assert lines(november) == [
        ("package:pro", 2, Decimal("999"), Decimal("1998.00")),
        ("dau_overage", 2, Decimal("10000"), Decimal("20000.00")),
    ]
    assert november.total == Decimal("21998.00")
    # nothing prepaid in December, but the paid periods cover it: usage is billed
    assert lines(december) == [("dau_overage", 2, Decimal("10000"), Decimal("20000.00"))]
    assert december.total == Decimal("20000.00")


def test_a_renewal_bought_in_december_is_on_the_december_bill() -> None:
    plan = PlanState(
        edition="pro",
        periods=consecutive_periods(d("2026-11-03"), 2),
        purchases=(Purchase(d("2026-11-03"), 1), Purchase(d("2026-12-01"), 1)),
    )

    november = compute_bill(CATALOG, plan, usage())
    december = compute_bill(CATALOG, plan, usage(DECEMBER))

    assert lines(november) == [("package:pro", 1, Decimal("999"), Decimal("999.00"))]
    assert lines(december) == [("package:pro", 1, Decimal("999"), Decimal("999.00"))]


def test_a_purchase_of_the_previous_month_is_not_charged_again() -> None:
    plan = pro(("2026-10-20", 1))  # 10-20..11-19

    bill = compute_bill(CATALOG, plan, usage())

    assert bill.items == ()
    assert bill.total == Decimal("0.00")


def test_expansions_one_line_per_kind_sorted_summing_periods() -> None:
    plan = pro(
        ("2026-11-03", 1),
        expansions=(
            grant("group_members_2000", "2026-11-10"),  # 1 period
            grant("group_members_2000", "2026-11-28", months=2),  # 2 periods
            grant("av_chatrooms_unlimited", "2026-11-15"),
            grant("groups_per_user_400", "2026-10-15"),  # bought in October: not here
            grant("retired_kind", "2026-11-05"),  # no longer in the catalog: skipped
        ),
    )

    bill = compute_bill(CATALOG, plan, usage())

    assert lines(bill) == [
        ("package:pro", 1, Decimal("999"), Decimal("999.00")),
        ("expansion:av_chatrooms_unlimited", 1, Decimal("1000"), Decimal("1000.00")),
        ("expansion:group_members_2000", 3, Decimal("500"), Decimal("1500.00")),
    ]
    assert bill.total == Decimal("3499.00")  # 999 + 1000 + 1500


def test_history_extension_is_not_a_prepaid_line() -> None:
    plan = pro(("2026-11-03", 1), expansions=(grant("history_extension", "2026-11-05", days=30),))

    bill = compute_bill(CATALOG, plan, usage(peak_dau=0))

    assert [i.item for i in bill.items] == ["package:pro"]


# -- DAU overage --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peak_dau", "expected"),
    [
        (0, None),
        (100_000, None),  # exactly the included DAU
        (100_001, (1, Decimal("10000.00"))),
        (200_000, (1, Decimal("10000.00"))),
        (200_001, (2, Decimal("20000.00"))),
    ],
)
def test_december_dau_overage(peak_dau: int, expected: tuple[int, Decimal] | None) -> None:
    # the example app: its November period (through 12-02) reaches into December
    bill = compute_bill(CATALOG, EXAMPLE, usage(DECEMBER, peak_dau=peak_dau))

    if expected is None:
        assert bill.items == ()
        assert bill.total == Decimal("0.00")
    else:
        assert lines(bill) == [("dau_overage", expected[0], Decimal("10000"), expected[1])]
        assert bill.total == expected[1]


def test_dau_overage_detail_without_a_peak_day() -> None:
    bill = compute_bill(CATALOG, EXAMPLE, usage(DECEMBER, peak_dau=100_001))

    assert line(bill, "dau_overage").detail == (
        "peak DAU 100001, 1 over the included 100000: 1 started block of 100000"
    )


def test_dau_overage_pro_rata() -> None:
    catalog = custom_catalog(dau_overage={"rounding": "pro_rata"})

    bill = compute_bill(catalog, EXAMPLE, usage(DECEMBER, peak_dau=150_000))

    # 50,000 over = half a block of 100,000
    assert lines(bill) == [("dau_overage", Decimal("0.5"), Decimal("10000"), Decimal("5000.00"))]
    assert bill.total == Decimal("5000.00")
    assert line(bill, "dau_overage").detail == (
        "peak DAU 150000, 50000 over the included 100000: 0.5 blocks of 100000 (pro rata)"
    )
    assert BillView.of(bill).model_dump(mode="json")["items"][0]["quantity"] == 0.5


def test_dau_overage_pro_rata_odd_fraction() -> None:
    catalog = custom_catalog(dau_overage={"rounding": "pro_rata"})

    bill = compute_bill(catalog, EXAMPLE, usage(DECEMBER, peak_dau=250_001))

    # 150,001 / 100,000 = 1.50001 blocks x 10,000 = 15,000.10
    assert lines(bill) == [
        ("dau_overage", Decimal("1.50001"), Decimal("10000"), Decimal("15000.10"))
    ]


# -- history extension --------------------------------------------------------------------------


def test_history_extension_active_in_the_month() -> None:
    plan = pro(("2026-11-03", 1), expansions=(grant("history_extension", "2026-11-05", days=30),))

    bill = compute_bill(CATALOG, plan, usage(peak_dau=250_001, peak_dau_day="2026-11-20"))

    assert lines(bill) == [
        ("package:pro", 1, Decimal("999"), Decimal("999.00")),
        ("dau_overage", 2, Decimal("10000"), Decimal("20000.00")),
        # 250,001 DAU: 3 started blocks of 100,000 at 500
        ("history_extension", 3, Decimal("500"), Decimal("1500.00")),
    ]
    assert bill.total == Decimal("22499.00")  # 999 + 20000 + 1500
    assert line(bill, "history_extension").detail == (
        "peak DAU 250001 on 2026-11-20: 3 started blocks of 100000 (history kept up to 30 days)"
    )


def test_history_extension_bought_last_month_and_still_active() -> None:
    # 10-15..11-14 covers the first half of November; several grants still make one line
    plan = pro(
        ("2026-10-03", 2),
        expansions=(
            grant("history_extension", "2026-10-15", days=30),
            grant("history_extension", "2026-11-15", days=90),
        ),
    )

    bill = compute_bill(CATALOG, plan, usage(peak_dau=100_000))

    assert lines(bill) == [("history_extension", 1, Decimal("500"), Decimal("500.00"))]
    assert line(bill, "history_extension").detail == (
        "peak DAU 100000: 1 started block of 100000 (history kept up to 90 days)"
    )


def test_history_extension_with_no_dau_has_no_line() -> None:
    plan = pro(("2026-10-03", 2), expansions=(grant("history_extension", "2026-11-05", days=30),))

    bill = compute_bill(CATALOG, plan, usage(peak_dau=0))

    assert bill.items == ()


def test_history_extension_that_ended_the_month_before_has_no_line() -> None:
    # 2026-10-01..10-31: not a day of November
    plan = pro(("2026-10-03", 2), expansions=(grant("history_extension", "2026-10-01", days=30),))

    bill = compute_bill(CATALOG, plan, usage(peak_dau=250_001))

    assert [i.item for i in bill.items] == ["dau_overage"]


def test_history_extension_starting_next_month_has_no_line() -> None:
    plan = pro(("2026-11-03", 2), expansions=(grant("history_extension", "2026-12-01", days=30),))

    bill = compute_bill(CATALOG, plan, usage(peak_dau=50_000))

    assert [i.item for i in bill.items] == ["package:pro"]


# -- peak groups --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peak_groups", "blocks", "amount"),
    [
        (100_001, 1, Decimal("1000.00")),
        (200_000, 1, Decimal("1000.00")),
        (200_001, 2, Decimal("2000.00")),
        (300_000, 2, Decimal("2000.00")),
    ],
)
def test_peak_groups(peak_groups: int, blocks: int, amount: Decimal) -> None:
    bill = compute_bill(CATALOG, EXAMPLE, usage(DECEMBER, peak_groups=peak_groups))

    assert lines(bill) == [("peak_groups", blocks, Decimal("1000"), amount)]
    assert bill.total == amount


def test_peak_groups_within_the_free_groups_has_no_line() -> None:
    bill = compute_bill(CATALOG, EXAMPLE, usage(DECEMBER, peak_groups=100_000))

    assert bill.items == ()


def test_peak_groups_detail() -> None:
    plan = EXAMPLE
    month_usage = MonthlyUsage(
        app=APP, month=DECEMBER, peak_groups=100_001, peak_groups_day=d("2026-12-02")
    )

    bill = compute_bill(CATALOG, plan, month_usage)

    assert line(bill, "peak_groups").detail == (
        "peak groups 100001 on 2026-12-02, 1 over the free 100000: 1 started block of 100000"
    )


# -- AV bandwidth -------------------------------------------------------------------------------


def test_bandwidth_rounds_each_day_up() -> None:
    bill = compute_bill(
        CATALOG, EXAMPLE, usage(DECEMBER, bandwidth={"2026-12-01": "2.5", "2026-12-02": "3"})
    )

    # 3 + 3 = 6 Mbps-days at 2
    assert lines(bill) == [("av_bandwidth", 6, Decimal("2"), Decimal("12.00"))]
    assert bill.total == Decimal("12.00")
    assert line(bill, "av_bandwidth").detail == (
        "6 Mbps-days over 2 days: each day's peak bandwidth rounded up to started blocks of Mbps"
    )


def test_bandwidth_in_november() -> None:
    plan = pro(("2026-10-20", 1))  # 10-20..11-19: pro on the days measured

    bill = compute_bill(CATALOG, plan, usage(bandwidth={"2026-11-01": "2.5", "2026-11-02": "3"}))

    assert lines(bill) == [("av_bandwidth", 6, Decimal("2"), Decimal("12.00"))]


def test_bandwidth_days_without_traffic_are_free() -> None:
    bill = compute_bill(
        CATALOG, EXAMPLE, usage(DECEMBER, bandwidth={"2026-12-01": "0", "2026-12-02": "0"})
    )

    assert bill.items == ()


def test_bandwidth_pro_rata_rounds_the_amount_half_up() -> None:
    catalog = custom_catalog(av_bandwidth={"rounding": "pro_rata", "price": "0.01"})

    bill = compute_bill(catalog, EXAMPLE, usage(DECEMBER, bandwidth={"2026-12-01": "0.5"}))

    # 0.5 Mbps-days x 0.01 = 0.005, half up to 0.01 (half-even would give 0.00)
    assert lines(bill) == [("av_bandwidth", Decimal("0.5"), Decimal("0.01"), Decimal("0.01"))]
    assert bill.total == Decimal("0.01")


# -- order, free editions, lapsed apps, custom catalogs ----------------------------------------


def test_item_order() -> None:
    plan = pro(
        ("2026-11-03", 1),
        expansions=(
            grant("history_extension", "2026-11-04", days=60),
            grant("group_members_2000", "2026-11-10"),
            grant("av_chatrooms_unlimited", "2026-11-12"),
        ),
    )

    bill = compute_bill(
        CATALOG,
        plan,
        usage(peak_dau=100_001, peak_groups=100_001, bandwidth={"2026-11-05": "1"}),
    )

    assert lines(bill) == [
        ("package:pro", 1, Decimal("999"), Decimal("999.00")),
        ("expansion:av_chatrooms_unlimited", 1, Decimal("1000"), Decimal("1000.00")),
        ("expansion:group_members_2000", 1, Decimal("500"), Decimal("500.00")),
        ("dau_overage", 1, Decimal("10000"), Decimal("10000.00")),
        ("history_extension", 2, Decimal("500"), Decimal("1000.00")),
        ("peak_groups", 1, Decimal("1000"), Decimal("1000.00")),
        ("av_bandwidth", 1, Decimal("2"), Decimal("2.00")),
    ]
    # 999 + 1000 + 500 + 10000 + 1000 + 1000 + 2
    assert bill.total == Decimal("14501.00")


def test_trial_app_owes_nothing_whatever_its_usage() -> None:
    plan = PlanState(edition="trial")

    bill = compute_bill(
        CATALOG,
        plan,
        usage(peak_dau=9_000_000, peak_groups=9_000_000, bandwidth={"2026-11-01": "500"}),
    )

    assert bill.items == ()
    assert bill.total == Decimal("0.00")
    assert BillView.of(bill).model_dump(mode="json")["total"] == 0


def test_lapsed_pro_app_has_no_usage_lines() -> None:
    # paid 09-03..10-02 and never renewed
    plan = pro(("2026-09-03", 1), expansions=(grant("history_extension", "2026-09-05", days=30),))

    bill = compute_bill(
        CATALOG,
        plan,
        usage(peak_dau=500_000, peak_groups=500_000, bandwidth={"2026-11-01": "10"}),
    )

    assert bill.items == ()
    assert bill.total == Decimal("0.00")


def test_pro_on_a_single_day_of_the_month_bills_its_usage() -> None:
    plan = pro(("2026-10-01", 1))  # 10-01..10-31
    last_day = compute_bill(CATALOG, plan, usage(Month(2026, 10), peak_dau=100_001))
    after = compute_bill(CATALOG, pro(("2026-10-01", 1)), usage(peak_dau=100_001))

    assert [i.item for i in last_day.items] == ["package:pro", "dau_overage"]
    assert after.items == ()

    plan = pro(("2026-11-30", 1))  # starts on November's last day
    first_day = compute_bill(CATALOG, plan, usage(peak_dau=100_001))
    assert [i.item for i in first_day.items] == ["package:pro", "dau_overage"]


def test_metered_items_missing_from_the_catalog_are_not_billed() -> None:
    catalog = custom_catalog(dau_overage=None, peak_groups=None, av_bandwidth=None)

    bill = compute_bill(
        catalog,
        EXAMPLE,
        usage(peak_dau=900_000, peak_groups=900_000, bandwidth={"2026-11-01": "5"}),
    )

    assert [i.item for i in bill.items] == ["package:pro", "expansion:group_members_2000"]
    assert bill.total == Decimal("1499.00")


# -- the admin answer ---------------------------------------------------------------------------


def test_the_bill_view_has_the_contract_shape() -> None:
    bill = compute_bill(
        CATALOG,
        EXAMPLE,
        usage(peak_dau=250_001, peak_dau_day="2026-11-20", bandwidth={"2026-11-01": "2.5"}),
    )

    answer = BillView.of(bill).model_dump(mode="json")

    assert set(answer) == {"app_id", "month", "currency", "items", "total"}
    assert answer["app_id"] == APP
    assert answer["month"] == "2026-11"
    assert answer["currency"] == "CNY"
    assert answer["total"] == 21505.0  # 999 + 500 + 20000 + 3 x 2
    for item in answer["items"]:
        assert set(item) == {"item", "quantity", "unit_price", "amount", "detail"}
        assert isinstance(item["amount"], float)
        assert isinstance(item["unit_price"], float)
        assert isinstance(item["quantity"], int)
        assert isinstance(item["detail"], str)
    assert answer["items"][2] == {
        "item": "dau_overage",
        "quantity": 2,
        "unit_price": 10000.0,
        "amount": 20000.0,
        "detail": (
            "peak DAU 250001 on 2026-11-20, 150001 over the included 100000: "
            "2 started blocks of 100000"
        ),
    }
    # JSON numbers, not strings
    text = json.dumps(answer)
    assert '"amount": 20000.0' in text
    assert '"total": 21505.0' in text
    assert json.loads(text) == answer
