"""The plan catalog (shipped numbers, custom files, validation) and the plan storage form."""

from __future__ import annotations

import copy
import json
import tomllib
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from limiter.catalog import Catalog, edition_limit, load_catalog
from limiter.errors import ConfigurationError, InvalidRequest, Lift
from limiter.periods import Period, consecutive_periods
from limiter.plan import (
    EDITION_FIELD,
    ExpansionGrant,
    Override,
    PlanState,
    Purchase,
    decode,
    edition_field_value,
    expansion_field,
    expansion_field_value,
    override_field,
    override_field_value,
)

CATALOG: Catalog = load_catalog()
SHIPPED_TEXT = resources.files("limiter").joinpath("catalog.toml").read_text(encoding="utf-8")
SHIPPED_DATA: dict[str, Any] = tomllib.loads(SHIPPED_TEXT)

# -- the shipped catalog: the numbers of plans.md ---------------------------------------------


def test_shipped_catalog_basics() -> None:
    assert CATALOG.currency == "CNY"
    assert CATALOG.grace_hours == 24
    assert set(CATALOG.editions) == {"trial", "pro"}
    assert set(CATALOG.group_types) == {"Private", "Public", "ChatRoom", "AVChatRoom"}


@pytest.mark.parametrize(
    ("edition", "limit", "value"),
    [
        ("trial", "users", 100),
        ("trial", "friends", 20),
        ("trial", "groups_per_user", 50),
        ("trial", "av_chatrooms", 10),
        ("trial", "history_days", 7),
        ("pro", "users", None),
        ("pro", "friends", 3000),
        ("pro", "groups_per_user", 200),
        ("pro", "av_chatrooms", 50),
        ("pro", "history_days", 7),
    ],
)
def test_shipped_edition_limits(edition: str, limit: str, value: int | None) -> None:
    assert getattr(CATALOG.edition(edition).limits, limit) == value
    assert edition_limit(CATALOG, edition, limit, None) == value


@pytest.mark.parametrize(
    ("edition", "members"),
    [
        ("trial", {"Private": 20, "Public": 20, "ChatRoom": 20, "AVChatRoom": None}),
        ("pro", {"Private": 200, "Public": 200, "ChatRoom": 200, "AVChatRoom": None}),
    ],
)
def test_shipped_group_member_limits(edition: str, members: dict[str, int | None]) -> None:
    assert CATALOG.edition(edition).limits.group_members == members
    for group_type, value in members.items():
        assert edition_limit(CATALOG, edition, "group_members", group_type) == value


@pytest.mark.parametrize(
    ("edition", "title", "paid", "price", "included_dau"),
    [
        ("trial", "Trial (free forever)", False, Decimal(0), 0),
        ("pro", "Pro (paid monthly)", True, Decimal("999"), 100_000),
    ],
)
def test_shipped_editions(
    edition: str, title: str, paid: bool, price: Decimal, included_dau: int
) -> None:
    found = CATALOG.edition(edition)
    assert found.title == title
    assert found.paid is paid
    assert found.price == price
    assert found.included_dau == included_dau


@pytest.mark.parametrize(
    ("kind", "limit", "value", "price", "period"),
    [
        ("av_chatrooms_unlimited", "av_chatrooms", None, Decimal("1000"), "prepaid"),
        ("group_members_2000", "group_members", 2000, Decimal("500"), "prepaid"),
        ("group_members_6000", "group_members", 6000, Decimal("1000"), "prepaid"),
        ("groups_per_user_400", "groups_per_user", 400, Decimal("500"), "prepaid"),
        ("groups_per_user_700", "groups_per_user", 700, Decimal("900"), "prepaid"),
        ("groups_per_user_1000", "groups_per_user", 1000, Decimal("1100"), "prepaid"),
    ],
)
def test_shipped_prepaid_expansions(
    kind: str, limit: str, value: int | None, price: Decimal, period: str
) -> None:
    expansion = CATALOG.expansion(kind)
    assert expansion.editions == ("pro",)
    assert expansion.raises.limit == limit
    assert expansion.raises.value == value
    assert expansion.raises.chosen_by_buyer is False
    assert expansion.price == price
    assert expansion.period == period
    assert expansion.block is None
    assert expansion.per is None


def test_shipped_history_extension() -> None:
    expansion = CATALOG.expansion("history_extension")
    assert expansion.editions == ("pro",)
    assert expansion.raises.limit == "history_days"
    assert expansion.raises.chosen_by_buyer is True
    assert (expansion.raises.min_value, expansion.raises.max_value) == (8, 360)
    assert expansion.price == Decimal("500")
    assert expansion.period == "settled"
    assert expansion.block == 100_000
    assert expansion.per == "peak_dau"


def test_shipped_catalog_has_exactly_the_sheets_expansions() -> None:
    assert set(CATALOG.expansions) == {
        "av_chatrooms_unlimited",
        "group_members_2000",
        "group_members_6000",
        "groups_per_user_400",
        "groups_per_user_700",
        "groups_per_user_1000",
        "history_extension",
    }


@pytest.mark.parametrize(
    ("item", "price", "block", "free", "rounding"),
    [
        ("dau_overage", Decimal("10000"), 100_000, 0, "ceil"),
        ("peak_groups", Decimal("1000"), 100_000, 100_000, "ceil"),
        ("av_bandwidth", Decimal("2"), 1, 0, "ceil"),
    ],
)
def test_shipped_metered_prices(
    item: str, price: Decimal, block: int, free: int, rounding: str
) -> None:
    metered = CATALOG.metered[item]
    assert metered.price == price
    assert metered.block == block
    assert metered.free == free
    assert metered.rounding == rounding


@pytest.mark.parametrize(
    ("group_type", "aliases", "counts", "av"),
    [
        ("Private", ("Work",), True, False),
        ("Public", (), True, False),
        ("ChatRoom", ("Meeting",), True, False),
        ("AVChatRoom", (), False, True),
    ],
)
def test_shipped_group_types(
    group_type: str, aliases: tuple[str, ...], counts: bool, av: bool
) -> None:
    found = CATALOG.group_types[group_type]
    assert found.aliases == aliases
    assert found.counts_toward_groups_per_user is counts
    assert found.av_chatroom is av


def test_shipped_catalog_loads_the_same_from_its_path() -> None:
    path = Path(str(resources.files("limiter").joinpath("catalog.toml")))
    assert load_catalog(path) == CATALOG
    assert load_catalog(str(path)) == CATALOG


# -- look-ups ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("Private", "Private"),
        ("Work", "Private"),
        ("Public", "Public"),
        ("ChatRoom", "ChatRoom"),
        ("Meeting", "ChatRoom"),
        ("AVChatRoom", "AVChatRoom"),
    ],
)
def test_group_type_names_and_aliases(name: str, canonical: str) -> None:
    assert CATALOG.group_type(name) == canonical


@pytest.mark.parametrize("name", ["Community", "Party", ""])
def test_unknown_group_type(name: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        CATALOG.group_type(name)
    assert caught.value.field == "type"
    assert isinstance(caught.value, ValueError)
    assert repr(name) in str(caught.value)


def test_unknown_edition_and_expansion() -> None:
    with pytest.raises(InvalidRequest) as edition:
        CATALOG.edition("gold")
    assert edition.value.field == "edition"
    assert "'gold'" in edition.value.message
    with pytest.raises(InvalidRequest) as kind:
        CATALOG.expansion("group_members_9000")
    assert kind.value.field == "kind"
    assert "'group_members_9000'" in kind.value.message


def test_group_members_lift_needs_a_group_type() -> None:
    with pytest.raises(InvalidRequest) as caught:
        CATALOG.lift("group_members", "trial", 20)
    assert caught.value.field == "group_type"


# -- custom catalogs --------------------------------------------------------------------------

CUSTOM_TOML = """
currency = "USD"
grace_hours = 48

[group_types.Team]
aliases = ["Squad"]

[group_types.Community]
counts_toward_groups_per_user = true

[group_types.Live]
counts_toward_groups_per_user = false
av_chatroom = true

[editions.free]
title = "Free"
paid = false
[editions.free.limits]
users = 10
friends = 5
groups_per_user = 3
av_chatrooms = 1
history_days = 1
group_members = { Team = 5, Community = 50, Live = "unlimited" }

[editions.team]
title = "Team"
paid = true
price = "49.50"
included_dau = 1000
[editions.team.limits]
users = "unlimited"
friends = 500
groups_per_user = 30
av_chatrooms = "unlimited"
history_days = 30
group_members = { Team = 100, Community = 1000, Live = "unlimited" }

[expansions.big_teams]
editions = ["team"]
raises = { limit = "group_members", value = 500 }
price = "20"
period = "prepaid"

[metered.dau_overage]
price = "5"
block = 1000
rounding = "pro_rata"
"""

CUSTOM_DATA: dict[str, Any] = {
    "currency": "USD",
    "grace_hours": 48,
    "group_types": {
        "Team": {"aliases": ["Squad"]},
        "Community": {"counts_toward_groups_per_user": True},
        "Live": {"counts_toward_groups_per_user": False, "av_chatroom": True},
    },
    "editions": {
        "free": {
            "title": "Free",
            "paid": False,
            "limits": {
                "users": 10,
                "friends": 5,
                "groups_per_user": 3,
                "av_chatrooms": 1,
                "history_days": 1,
                "group_members": {"Team": 5, "Community": 50, "Live": None},
            },
        },
        "team": {
            "title": "Team",
            "paid": True,
            "price": "49.50",
            "included_dau": 1000,
            "limits": {
                "users": None,
                "friends": 500,
                "groups_per_user": 30,
                "av_chatrooms": "unlimited",
                "history_days": 30,
                "group_members": {"Team": 100, "Community": 1000, "Live": "unlimited"},
            },
        },
    },
    "expansions": {
        "big_teams": {
            "editions": ["team"],
            "raises": {"limit": "group_members", "value": 500},
            "price": "20",
            "period": "prepaid",
        }
    },
    "metered": {"dau_overage": {"price": "5", "block": 1000, "rounding": "pro_rata"}},
}


def _check_custom(catalog: Catalog) -> None:
    assert catalog.currency == "USD"
    assert catalog.grace_hours == 48
    assert catalog.group_type("Squad") == "Team"
    assert catalog.group_type("Community") == "Community"
    assert catalog.group_types["Live"].av_chatroom is True
    free = catalog.edition("free")
    assert free.paid is False
    assert (free.limits.users, free.limits.friends, free.limits.groups_per_user) == (10, 5, 3)
    assert free.limits.group_members == {"Team": 5, "Community": 50, "Live": None}
    team = catalog.edition("team")
    assert team.price == Decimal("49.50")
    assert team.included_dau == 1000
    assert team.limits.users is None
    assert team.limits.av_chatrooms is None
    assert team.limits.history_days == 30
    assert catalog.expansion("big_teams").raises.value == 500
    assert catalog.metered["dau_overage"].rounding == "pro_rata"
    assert catalog.metered["dau_overage"].free == 0
    # the catalog's own items are what lifts a limit
    assert catalog.lift("group_members", "free", 5, "Team") == Lift(
        "edition", "team", 100, Decimal("49.50")
    )
    assert catalog.lift("group_members", "team", 100, "Team") == Lift(
        "expansion", "big_teams", 500, Decimal("20")
    )
    with pytest.raises(InvalidRequest):
        catalog.group_type("Work")


def test_custom_catalog_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "plans.toml"
    path.write_text(CUSTOM_TOML, encoding="utf-8")
    _check_custom(load_catalog(path))


def test_custom_catalog_from_json(tmp_path: Path) -> None:
    path = tmp_path / "plans.json"
    path.write_text(json.dumps(CUSTOM_DATA), encoding="utf-8")
    _check_custom(load_catalog(str(path)))


def test_custom_catalog_toml_and_json_agree(tmp_path: Path) -> None:
    toml_path = tmp_path / "plans.toml"
    toml_path.write_text(CUSTOM_TOML, encoding="utf-8")
    json_path = tmp_path / "PLANS.JSON"
    json_path.write_text(json.dumps(CUSTOM_DATA), encoding="utf-8")
    assert load_catalog(toml_path) == load_catalog(json_path)


def test_shipped_catalog_as_json(tmp_path: Path) -> None:
    path = tmp_path / "shipped.json"
    path.write_text(json.dumps(SHIPPED_DATA), encoding="utf-8")
    assert load_catalog(path) == CATALOG


# -- bad catalogs -----------------------------------------------------------------------------


def _mutated(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(SHIPPED_DATA)
    change(data)
    return data


def _pro_limits(data: dict[str, Any]) -> dict[str, Any]:
    limits: dict[str, Any] = data["editions"]["pro"]["limits"]
    return limits


@pytest.mark.parametrize(
    ("change", "names"),
    [
        pytest.param(
            lambda d: _pro_limits(d).update(friends=-1),
            ["editions.pro.limits.friends", "greater than or equal to 0"],
            id="negative-limit",
        ),
        pytest.param(
            lambda d: _pro_limits(d)["group_members"].update(Public=-5),
            ["editions.pro.limits.group_members.Public"],
            id="negative-group-limit",
        ),
        pytest.param(
            lambda d: _pro_limits(d).update(friends=True),
            ["editions.pro.limits.friends"],
            id="boolean-limit",
        ),
        pytest.param(
            lambda d: _pro_limits(d).update(friends="lots"),
            ["editions.pro.limits.friends"],
            id="word-limit",
        ),
        pytest.param(
            lambda d: _pro_limits(d).pop("users"),
            ["editions.pro.limits.users", "required"],
            id="missing-limit",
        ),
        pytest.param(
            lambda d: _pro_limits(d).update(storage_gb=5),
            ["editions.pro.limits.storage_gb", "Extra inputs"],
            id="unknown-limit-field",
        ),
        pytest.param(
            lambda d: d.update(discount=5),
            ["discount", "Extra inputs"],
            id="unknown-top-field",
        ),
        pytest.param(
            lambda d: d["expansions"]["group_members_2000"].update(colour="red"),
            ["expansions.group_members_2000.colour"],
            id="unknown-expansion-field",
        ),
        pytest.param(
            lambda d: _pro_limits(d)["group_members"].pop("Public"),
            ["editions.pro.limits.group_members", "missing: Public"],
            id="group-members-missing-a-type",
        ),
        pytest.param(
            lambda d: d["editions"]["trial"]["limits"]["group_members"].update(Club=5),
            ["editions.trial.limits.group_members", "unknown: Club"],
            id="group-members-unknown-type",
        ),
        pytest.param(
            lambda d: d["expansions"]["group_members_2000"].update(editions=["gold"]),
            ["expansions.group_members_2000.editions", "'gold'"],
            id="expansion-unknown-edition",
        ),
        pytest.param(
            lambda d: d["expansions"]["group_members_2000"].update(price="-1"),
            ["expansions.group_members_2000.price"],
            id="negative-expansion-price",
        ),
        pytest.param(
            lambda d: d["expansions"]["group_members_2000"]["raises"].update(limit="storage"),
            ["expansions.group_members_2000.raises.limit"],
            id="expansion-unknown-limit",
        ),
        pytest.param(
            lambda d: d["metered"]["peak_groups"].update(block=0),
            ["metered.peak_groups.block"],
            id="zero-metered-block",
        ),
        pytest.param(
            lambda d: d["metered"]["peak_groups"].update(rounding="floor"),
            ["metered.peak_groups.rounding"],
            id="unknown-rounding",
        ),
        pytest.param(
            lambda d: d.update(grace_hours=-1),
            ["grace_hours"],
            id="negative-grace",
        ),
        pytest.param(
            lambda d: d["group_types"]["Public"].update(aliases=["Work"]),
            ["group_types.Public", "'Work'"],
            id="alias-used-twice",
        ),
        pytest.param(
            lambda d: d["editions"]["pro"].update(price="-999"),
            ["editions.pro.price"],
            id="negative-edition-price",
        ),
    ],
)
def test_bad_catalog_names_the_field(tmp_path: Path, change: Any, names: list[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_mutated(change)), encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert str(path) in message
    for name in names:
        assert name in message


def test_bad_catalog_in_toml_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SHIPPED_TEXT.replace("friends = 3000", "friends = -3000"), encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"editions\.pro\.limits\.friends"):
        load_catalog(path)


@pytest.mark.parametrize(
    ("name", "text", "names"),
    [
        ("syntax.toml", 'currency = "CNY"\n[editions.pro\n', ["not valid toml"]),
        ("syntax.toml", "grace_hours = \n", ["not valid toml"]),
        ("syntax.json", '{"currency": "CNY",', ["not valid json"]),
        ("empty.toml", "", ["group_types", "editions", "required"]),
    ],
)
def test_unparsable_catalog(tmp_path: Path, name: str, text: str, names: list[str]) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert str(path) in message
    for part in names:
        assert part in message


def test_missing_catalog_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "plans.toml"
    with pytest.raises(ConfigurationError) as caught:
        load_catalog(path)
    assert str(path) in str(caught.value)
    assert "cannot read" in str(caught.value)


def test_catalog_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_catalog(tmp_path)


# -- the plan storage form: decode round-trips -----------------------------------------------


def _encode(plan: PlanState) -> dict[str, str]:
    fields = {EDITION_FIELD: edition_field_value(plan.edition, plan.periods, plan.purchases)}
    for grant in plan.expansions:
        fields[expansion_field(grant.id)] = expansion_field_value(grant)
    for limit, override in plan.app_overrides.items():
        fields[override_field(limit)] = override_field_value(override)
    for (user, limit), override in plan.user_overrides.items():
        fields[override_field(limit, user=user)] = override_field_value(override)
    for group, override in plan.group_overrides.items():
        fields[override_field("group_members", group=group)] = override_field_value(override)
    return fields


def test_empty_hash_is_the_default_edition() -> None:
    assert decode({}, "trial") == PlanState("trial")
    assert decode({}, "pro") == PlanState("pro")


@pytest.mark.parametrize(
    ("edition", "periods"),
    [
        ("trial", ()),
        ("pro", consecutive_periods(date(2026, 1, 15), 1)),
        ("pro", consecutive_periods(date(2026, 1, 31), 2)),
        (
            "pro",
            (
                Period(date(2026, 1, 15), date(2026, 2, 14)),
                Period(date(2026, 3, 10), date(2026, 4, 9)),
            ),
        ),
    ],
)
def test_edition_field_round_trip(edition: str, periods: tuple[Period, ...]) -> None:
    purchases = tuple(Purchase(p.starts_on, 1) for p in periods)
    plan = decode({EDITION_FIELD: edition_field_value(edition, periods, purchases)}, "trial")
    assert plan.edition == edition
    assert plan.periods == periods
    assert plan == PlanState(edition, periods=periods, purchases=purchases)


@pytest.mark.parametrize(
    "grant",
    [
        ExpansionGrant("g1", "group_members_2000", consecutive_periods(date(2026, 1, 15), 1)),
        ExpansionGrant("g2", "groups_per_user_1000", consecutive_periods(date(2026, 12, 20), 3)),
        ExpansionGrant("g3", "av_chatrooms_unlimited", consecutive_periods(date(2028, 1, 31), 1)),
        ExpansionGrant(
            "h:1", "history_extension", consecutive_periods(date(2026, 1, 1), 1), days=30
        ),
    ],
)
def test_expansion_field_round_trip(grant: ExpansionGrant) -> None:
    name = expansion_field(grant.id)
    plan = decode({name: expansion_field_value(grant)}, "pro")
    assert plan.expansions == (grant,)
    assert plan.expansions[0].days == grant.days
    assert plan.expansions[0].starts_on == grant.periods[0].starts_on
    assert plan.expansions[0].ends_on == grant.periods[-1].ends_on


def test_expansions_decode_in_start_order() -> None:
    late = ExpansionGrant("a", "group_members_6000", consecutive_periods(date(2026, 3, 1), 1))
    early = ExpansionGrant("z", "group_members_2000", consecutive_periods(date(2026, 1, 1), 1))
    same_day = ExpansionGrant("b", "groups_per_user_400", consecutive_periods(date(2026, 3, 1), 1))
    fields = {expansion_field(g.id): expansion_field_value(g) for g in (late, same_day, early)}
    assert decode(fields, "pro").expansions == (early, late, same_day)


BEIJING = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    "override",
    [
        Override(10),
        Override(0),
        Override(None),
        Override(5000, expires_at=datetime(2026, 12, 1, 0, 0, tzinfo=BEIJING)),
        Override(None, expires_at=datetime(2026, 12, 1, 0, 0, 0, 500_000, tzinfo=UTC)),
        Override(7, expires_at=datetime(2026, 12, 1, 0, 0, tzinfo=ZoneInfo("Asia/Shanghai"))),
    ],
)
@pytest.mark.parametrize(
    ("limit", "user", "group"),
    [
        ("friends", None, None),
        ("users", None, None),
        ("group_members", None, None),
        ("friends", "alice", None),
        ("groups_per_user", "alice", None),
        ("friends", "team:alice", None),
        ("friends", "a:b:c:", None),
        ("friends", ":", None),
        ("group_members", None, "g1"),
        ("group_members", None, "room:42"),
        ("group_members", None, "@TGS#:x:y"),
    ],
)
def test_override_field_round_trip(
    override: Override, limit: str, user: str | None, group: str | None
) -> None:
    name = override_field(limit, user=user, group=group)
    plan = decode({name: override_field_value(override)}, "pro")
    if user is not None:
        assert plan.user_overrides == {(user, limit): override}
        assert not plan.app_overrides
        assert not plan.group_overrides
    elif group is not None:
        assert plan.group_overrides == {group: override}
        assert not plan.app_overrides
        assert not plan.user_overrides
    else:
        assert plan.app_overrides == {limit: override}
        assert not plan.user_overrides
        assert not plan.group_overrides
    decoded = next(
        iter(
            (
                *plan.app_overrides.values(),
                *plan.user_overrides.values(),
                *plan.group_overrides.values(),
            )
        )
    )
    assert decoded.value == override.value
    assert decoded.expires_at == override.expires_at


@pytest.mark.parametrize(
    ("limit", "user", "group", "name"),
    [
        ("friends", None, None, "override:app:friends"),
        ("friends", "a:b", None, "override:user:friends:a:b"),
        ("group_members", None, "g:1", "override:group:group_members:g:1"),
    ],
)
def test_override_field_names_put_the_id_last(
    limit: str, user: str | None, group: str | None, name: str
) -> None:
    assert override_field(limit, user=user, group=group) == name


def test_whole_plan_round_trip() -> None:
    plan = PlanState(
        edition="pro",
        periods=consecutive_periods(date(2026, 1, 31), 2),
        expansions=(
            ExpansionGrant("e1", "group_members_2000", consecutive_periods(date(2026, 1, 31), 1)),
            ExpansionGrant(
                "e2", "history_extension", consecutive_periods(date(2026, 2, 15), 2), days=90
            ),
        ),
        app_overrides={"friends": Override(10), "users": Override(None)},
        user_overrides={
            ("alice", "friends"): Override(50, expires_at=datetime(2026, 6, 1, tzinfo=BEIJING)),
            ("x:y", "groups_per_user"): Override(None),
        },
        group_overrides={"g:1": Override(1000), "g2": Override(3)},
    )
    assert decode(_encode(plan), "trial") == plan
